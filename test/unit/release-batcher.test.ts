import { describe, expect, it } from 'vitest';
import { RELEASE_BATCH_MAX, ReleaseBatcher } from '../../src/client/release-batcher.js';

describe('ReleaseBatcher', () => {
  it('sends releases made together as one call, one entry per handle', async () => {
    const sent: number[][] = [];
    const b = new ReleaseBatcher(async (inos) => void sent.push(inos));
    await Promise.all([b.release(7), b.release(7), b.release(9)]);
    expect(sent).toEqual([[7, 7, 9]]);
    expect(b.pending).toBe(0);
  });

  it('flush sends at once and later releases start a new batch', async () => {
    const sent: number[][] = [];
    const b = new ReleaseBatcher(async (inos) => void sent.push(inos));
    const p = b.release(1);
    await b.flush();
    await p;
    await b.release(2);
    expect(sent).toEqual([[1], [2]]);
  });

  it('a full batch leaves without waiting for the timer', async () => {
    const sent: number[][] = [];
    const b = new ReleaseBatcher(async (inos) => void sent.push(inos));
    const ps = Array.from({ length: RELEASE_BATCH_MAX + 1 }, (_, i) => b.release(i + 1));
    expect(sent.length).toBe(1);
    expect(sent[0]!.length).toBe(RELEASE_BATCH_MAX);
    await Promise.all(ps);
    expect(sent.map((s) => s.length)).toEqual([RELEASE_BATCH_MAX, 1]);
  });

  it("every release of a failed batch gets the call's error", async () => {
    const b = new ReleaseBatcher(async () => {
      throw new Error('master gone');
    });
    const results = await Promise.allSettled([b.release(1), b.release(2)]);
    expect(results.map((r) => (r.status === 'rejected' ? (r.reason as Error).message : 'ok'))).toEqual(['master gone', 'master gone']);
  });
});
