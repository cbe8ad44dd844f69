// Token bucket timing (lower bounds only) and the running per-block checksums used by clones.
import { describe, expect, it } from 'vitest';
import { BLOCK, crcOf, RunningBlockCrcs } from '../../src/chunkserver/checksum.js';
import { segmentBytes } from '../../src/chunkserver/cloner.js';
import { TokenBucket } from '../../src/chunkserver/rate-limiter.js';
import { MiB } from '../../src/common/limits.js';

describe('TokenBucket', () => {
  it('lets the burst through at once, then waits out the debt at the rate', async () => {
    const b = new TokenBucket(1_000_000, 100_000);
    let t0 = performance.now();
    await b.take(100_000);
    expect(performance.now() - t0).toBeLessThan(50);
    t0 = performance.now();
    await b.take(300_000); // 300 ms of debt
    await b.take(100_000); // 100 ms more
    expect(performance.now() - t0).toBeGreaterThanOrEqual(380);
  });

  it('never waits when unlimited, and rejects on abort', async () => {
    const free = new TokenBucket(Infinity);
    await free.take(10 ** 12);
    const slow = new TokenBucket(1_000, 0);
    const ac = new AbortController();
    const p = slow.take(1_000_000, ac.signal);
    ac.abort();
    await expect(p).rejects.toThrow();
    expect(() => new TokenBucket(0)).toThrow(RangeError);
  });
});

describe('RunningBlockCrcs', () => {
  it('matches per-block checksums whatever the piece sizes', () => {
    const data = Buffer.alloc(3 * BLOCK + 777);
    for (let i = 0; i < data.length; i++) data[i] = (i * 13 + 5) & 0xff;
    const expected: number[] = [];
    for (let off = 0; off < data.length; off += BLOCK) expected.push(crcOf(data.subarray(off, off + BLOCK)));
    for (const piece of [1, 1000, BLOCK, BLOCK + 1, data.length]) {
      const r = new RunningBlockCrcs();
      for (let off = 0; off < data.length; off += piece) r.update(data.subarray(off, off + piece));
      expect(r.length).toBe(data.length);
      expect([...r.finish()]).toEqual(expected);
    }
    expect(new RunningBlockCrcs().finish().length).toBe(0);
  });
});

describe('clone segments', () => {
  it('are whole blocks, about a quarter second of rate, between one block and 4 MiB', () => {
    expect(segmentBytes(2 * MiB)).toBe(512 * 1024);
    expect(segmentBytes(64 * MiB)).toBe(4 * MiB);
    expect(segmentBytes(1000)).toBe(BLOCK);
    expect(segmentBytes(3 * MiB) % BLOCK).toBe(0);
  });
});
