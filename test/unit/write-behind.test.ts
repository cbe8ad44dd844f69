import { describe, expect, it } from 'vitest';
import { WriteBehind } from '../../src/chunkserver/write-behind.js';

/** A flush hook whose flushes end when the test says so. */
function manual() {
  const started: number[] = [];
  const ends: Array<(ok: boolean | Error) => void> = [];
  const failures: Array<[number, unknown]> = [];
  const hooks = {
    flush: (h: number) =>
      new Promise<boolean>((resolve, reject) => {
        started.push(h);
        ends.push((r) => (r instanceof Error ? reject(r) : resolve(r)));
      }),
    failed: (h: number, err: unknown) => void failures.push([h, err]),
  };
  return { hooks, started, ends, failures };
}

const tick = () => new Promise((r) => setImmediate(r));

describe('write-behind', () => {
  it('flushes a chunk once the bytes written to it since its last flush reach the mark', async () => {
    const m = manual();
    const wb = new WriteBehind(m.hooks, 100);
    wb.wrote(1, 60);
    expect(m.started).toEqual([]);
    wb.wrote(1, 40);
    expect(m.started).toEqual([1]);
    m.ends[0](true);
    await wb.idle();
    expect(wb.flushes).toBe(1);
    // The count starts again from zero after a flush begins.
    wb.wrote(1, 99);
    expect(m.started).toEqual([1]);
  });

  it('runs one flush at a time and takes waiting chunks in the order they passed the mark', async () => {
    const m = manual();
    const wb = new WriteBehind(m.hooks, 10);
    wb.wrote(1, 10);
    wb.wrote(2, 10);
    wb.wrote(3, 10);
    wb.wrote(2, 10); // already waiting: not queued twice
    expect(m.started).toEqual([1]);
    m.ends[0](true);
    await tick();
    expect(m.started).toEqual([1, 2]);
    m.ends[1](false); // the chunk was gone: not counted
    await tick();
    expect(m.started).toEqual([1, 2, 3]);
    m.ends[2](true);
    await wb.idle();
    expect(wb.flushes).toBe(2);
  });

  it('forgets a settled chunk: synced or deleted data is not flushed again', async () => {
    const m = manual();
    const wb = new WriteBehind(m.hooks, 10);
    wb.wrote(1, 10);
    wb.wrote(2, 10);
    wb.wrote(3, 5);
    wb.settled(2);
    wb.settled(3);
    wb.wrote(3, 5); // 5 since it settled: under the mark
    m.ends[0](true);
    await wb.idle();
    expect(m.started).toEqual([1]);
  });

  it('reports a failed flush to the store and goes on with the next chunk', async () => {
    const m = manual();
    const wb = new WriteBehind(m.hooks, 10);
    wb.wrote(7, 10);
    wb.wrote(8, 10);
    const err = new Error('EIO: i/o error, fdatasync');
    m.ends[0](err);
    await tick();
    expect(m.failures).toEqual([[7, err]]);
    expect(m.started).toEqual([7, 8]);
    m.ends[1](true);
    await wb.idle();
    expect(wb.flushes).toBe(1);
  });

  it('refuses a mark that is not a positive byte count', () => {
    const m = manual();
    expect(() => new WriteBehind(m.hooks, 0)).toThrow(/positive byte count/);
    expect(() => new WriteBehind(m.hooks, 1.5)).toThrow(/positive byte count/);
  });
});
