import { describe, expect, it } from 'vitest';
import { BLOCK_BYTES, BlockFill, type BlockFillEnv } from '../../src/fuse/block-fill.js';
import { silentLogger } from '../../src/common/logger.js';

const FILE = Buffer.alloc(3 * BLOCK_BYTES + 1000);
for (let i = 0; i < FILE.length; i++) FILE[i] = (i * 7 + (i >> 12)) & 0xff;

interface Stored {
  ino: number;
  off: number;
  data: Buffer;
}

/** A file of FILE's bytes; fetches resolve when release() is called (or at once with `auto`). */
function setup(opts: { auto?: boolean; limit?: number | undefined; noStore?: boolean } = {}) {
  const fetches: Array<{ off: number; len: number; go: () => void }> = [];
  const stored: Stored[] = [];
  const storeDone: Array<() => void> = [];
  const env: BlockFillEnv = {
    fetch: (_ino, off, len) =>
      new Promise((resolve) => {
        const go = () => resolve(Buffer.from(FILE.subarray(off, Math.min(FILE.length, off + len))));
        fetches.push({ off, len, go });
        if (opts.auto !== false) go();
      }),
    store: opts.noStore
      ? undefined
      : (ino, off, data) =>
          new Promise((resolve) => {
            stored.push({ ino, off, data: Buffer.from(data) });
            storeDone.push(() => resolve(0));
          }),
    fillLimit: () => ('limit' in opts ? opts.limit : FILE.length),
    log: silentLogger,
  };
  return { fill: new BlockFill(env), fetches, stored, storeDone };
}

describe('BlockFill', () => {
  it('fetches the aligned block, answers the read, and stores the pages around it', async () => {
    const { fill, fetches, stored, storeDone } = setup();
    const off = BLOCK_BYTES + 8192;
    const got = await fill.read(5, off, 4096);
    expect(got.equals(FILE.subarray(off, off + 4096))).toBe(true);
    expect(fetches.map((f) => [f.off, f.len])).toEqual([[BLOCK_BYTES, BLOCK_BYTES]]);
    expect(stored.map((s) => [s.ino, s.off, s.data.length])).toEqual([
      [5, BLOCK_BYTES, 8192],
      [5, off + 4096, BLOCK_BYTES - 8192 - 4096],
    ]);
    for (const s of stored) expect(s.data.equals(FILE.subarray(s.off, s.off + s.data.length))).toBe(true);
    storeDone.forEach((f) => f());
    await fill.idle(5);
    expect(fill.filledBytes).toBe(BLOCK_BYTES - 4096);
  });

  it('never stores past the size the kernel was told, and reads end at end of file', async () => {
    const { fill, stored } = setup({ limit: 3 * BLOCK_BYTES + 500 });
    const got = await fill.read(1, 3 * BLOCK_BYTES, 4096);
    expect(got.length).toBe(1000); // the fetch is bounded by the file, not by the limit
    expect(stored.map((s) => [s.off, s.data.length])).toEqual([]); // the read covers all the limit allows
    const tail = setup({ limit: FILE.length });
    await tail.fill.read(1, 3 * BLOCK_BYTES - 4096, 4096);
    expect(tail.stored.map((s) => [s.off, s.data.length])).toEqual([[2 * BLOCK_BYTES, BLOCK_BYTES - 4096]]);
  });

  it('concurrent reads of one block share its fetch', async () => {
    const { fill, fetches } = setup({ auto: false });
    const a = fill.read(1, 0, 4096);
    const b = fill.read(1, 12288, 4096);
    expect(fetches.length).toBe(1);
    fetches[0]!.go();
    const [ga, gb] = await Promise.all([a, b]);
    expect(ga.equals(FILE.subarray(0, 4096))).toBe(true);
    expect(gb.equals(FILE.subarray(12288, 16384))).toBe(true);
  });

  it('a change while the fetch is under way: the reader gets its bytes, the kernel gets nothing, later reads fetch again', async () => {
    const { fill, fetches, stored } = setup({ auto: false });
    const a = fill.read(1, 0, 4096);
    fill.invalidate(1);
    const b = fill.read(1, 4096, 4096); // after the change: must not join the old fetch
    expect(fetches.length).toBe(2);
    fetches.forEach((f) => f.go());
    await Promise.all([a, b]);
    // Only the second fetch fills: around its own read, 4096..8192.
    expect(stored.map((s) => [s.off, s.data.length])).toEqual([[0, 4096], [8192, BLOCK_BYTES - 8192]]);
  });

  it('no fill while the file may not be filled (a writer here), nor without a session', async () => {
    const w = setup({ limit: undefined });
    await w.fill.read(1, 0, 4096);
    expect(w.stored.length).toBe(0);
    const n = setup({ noStore: true });
    const got = await n.fill.read(1, 4096, 4096);
    expect(got.equals(FILE.subarray(4096, 8192))).toBe(true);
    expect(n.fetches.map((f) => [f.off, f.len])).toEqual([[4096, 4096]]);
  });

  it('a read spanning two blocks is answered from both; larger reads go straight through', async () => {
    const { fill, fetches } = setup();
    const off = BLOCK_BYTES - 2048;
    const got = await fill.read(1, off, 4096);
    expect(got.equals(FILE.subarray(off, off + 4096))).toBe(true);
    expect(fetches.map((f) => f.off)).toEqual([0, BLOCK_BYTES]);
    await fill.read(1, 0, 3 * BLOCK_BYTES);
    expect(fetches.at(-1)).toMatchObject({ off: 0, len: 3 * BLOCK_BYTES });
  });

  it('idle() waits for the fills under way', async () => {
    const { fill, storeDone } = setup();
    await fill.read(1, 0, 4096);
    let idle = false;
    const p = fill.idle(1).then(() => (idle = true));
    await new Promise((r) => setImmediate(r));
    expect(idle).toBe(false);
    storeDone.forEach((f) => f());
    await p;
    expect(idle).toBe(true);
  });
});
