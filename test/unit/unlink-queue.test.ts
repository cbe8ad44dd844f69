import { describe, expect, it } from 'vitest';
import { MAX_UNLINKS_IN_FLIGHT, UnlinkQueue } from '../../src/fuse/unlink-queue.js';
import { silentLogger } from '../../src/common/logger.js';

function deferred() {
  let resolve!: () => void;
  let reject!: (e: Error) => void;
  const p = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { p, resolve, reject };
}

describe('UnlinkQueue', () => {
  it('settled() waits for the unlinks of the directories named, not of others', async () => {
    const q = new UnlinkQueue(silentLogger);
    const a = deferred();
    const b = deferred();
    await q.start(1, 'x', () => a.p, () => undefined);
    await q.start(2, 'y', () => b.p, () => undefined);
    let one = false;
    const s1 = q.settled([1]).then(() => (one = true));
    b.resolve();
    await q.settled([2]);
    expect(one).toBe(false);
    a.resolve();
    await s1;
    expect(q.pending).toBe(0);
  });

  it('a refused unlink calls onFail and still settles', async () => {
    const q = new UnlinkQueue(silentLogger);
    let failed = 0;
    await q.start(1, 'x', () => Promise.reject(new Error('EACCES')), () => failed++);
    await q.settled([1]);
    expect(failed).toBe(1);
    expect(q.failures).toBe(1);
  });

  it('at most MAX_UNLINKS_IN_FLIGHT run at once; the next start waits for a slot', async () => {
    const q = new UnlinkQueue(silentLogger);
    const ds = Array.from({ length: MAX_UNLINKS_IN_FLIGHT }, () => deferred());
    for (const d of ds) await q.start(1, 'n', () => d.p, () => undefined);
    let started = false;
    const next = q.start(1, 'last', async () => void (started = true), () => undefined);
    await new Promise((r) => setImmediate(r));
    expect(started).toBe(false);
    expect(q.pending).toBe(MAX_UNLINKS_IN_FLIGHT);
    ds[0]!.resolve();
    await next;
    expect(started).toBe(true);
    ds.forEach((d) => d.resolve());
    await q.all();
    expect(q.pending).toBe(0);
  });
});
