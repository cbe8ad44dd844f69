import { mkdir, mkdtemp, open, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { GfsError } from '../../src/common/errors.js';
import { CHECKSUM_BLOCK as B } from '../../src/common/limits.js';
import { crcOf } from '../../src/chunkserver/checksum.js';
import { DATA_BASE, decodeMeta, encodeMeta, META_SLOT_BYTES } from '../../src/chunkserver/chunk-meta.js';
import { ChunkStore, DELETE_SLICE } from '../../src/chunkserver/chunk-store.js';
import { WRITE_BEHIND_BYTES } from '../../src/chunkserver/write-behind.js';

const dirs: string[] = [];
const stores: ChunkStore[] = [];

async function fresh(dir?: string): Promise<{ dir: string; store: ChunkStore }> {
  dir ??= await mkdtemp(join(tmpdir(), 'gfs-store-'));
  if (!dirs.includes(dir)) dirs.push(dir);
  const store = await ChunkStore.open(dir);
  stores.push(store);
  return { dir, store };
}

afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

function pattern(n: number, seed = 1): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed * 7) & 0xff;
  return b;
}

/** Buffer equality without vitest's slow element-by-element diff. */
function same(actual: Buffer, expected: Buffer): void {
  if (actual.equals(expected)) return;
  let i = 0;
  while (i < actual.length && actual[i] === expected[i]) i++;
  expect.fail(`buffers differ at byte ${i} (lengths ${actual.length} and ${expected.length})`);
}

async function errOf(p: Promise<unknown>): Promise<GfsError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(GfsError);
    return err as GfsError;
  }
  throw new Error('expected a failure');
}

/**
 * Chunk h as versions before the one-file layout stored it (the store must be closed): the
 * data at offset 0 of `<h>.chunk`, the meta in the `<h>.meta` sidecar.
 */
async function legacyChunk(store: ChunkStore, h: number, data: Buffer, meta: Buffer): Promise<void> {
  await mkdir(dirname(store.chunkPath(h)), { recursive: true });
  await writeFile(store.chunkPath(h), data);
  await writeFile(store.metaPath(h), meta);
}

async function flipByte(path: string, pos: number): Promise<void> {
  const fh = await open(path, 'r+');
  const b = Buffer.alloc(1);
  await fh.read(b, 0, 1, pos);
  b[0] = b[0]! ^ 0xff;
  await fh.write(b, 0, 1, pos);
  await fh.close();
}

describe('ChunkStore', () => {
  it('creates a chunk on first write and reads back any range', async () => {
    const { store } = await fresh();
    const data = pattern(3 * B + 123);
    expect(await store.write(7, 1, 0, data, { create: true, sync: false })).toBe(data.length);
    expect(store.info(7)).toMatchObject({ version: 1, length: data.length });
    same(await store.read(7, 1, 0, data.length), data);
    same(await store.read(7, 1, B - 10, 20), data.subarray(B - 10, B + 10));
    same(await store.read(7, 1, data.length - 5, 100), data.subarray(data.length - 5));
    expect((await store.read(7, 1, data.length, 10)).length).toBe(0);
    expect(store.report()).toEqual([{ handle: 7, version: 1, length: data.length }]);
    expect(store.used).toBe(data.length);
  });

  it('splices partial-block overwrites and zero-fills gaps', async () => {
    const { store } = await fresh();
    const model = Buffer.alloc(5 * B + 77);
    const apply = async (off: number, d: Buffer) => {
      await store.write(9, 3, off, d, { create: true, sync: false });
      d.copy(model, off);
    };
    await apply(100, pattern(B, 2)); // straddles blocks 0 and 1
    await apply(3 * B + 10, pattern(500, 3)); // gap from ~B+100 to 3B+10
    await apply(B - 1, pattern(3, 4)); // tiny overwrite across a boundary
    await apply(5 * B, pattern(77, 5)); // gap, new partial last block
    const len = store.info(9)!.length;
    expect(len).toBe(5 * B + 77);
    same(await store.read(9, 3, 0, len), model.subarray(0, len));
    // A reopened store sees the same bytes and checksums.
    await store.close();
    const again = await ChunkStore.open(store.dataDir);
    stores.push(again);
    same(await again.read(9, 3, 0, len), model.subarray(0, len));
  });

  it('detects a flipped byte, fails with EIO, reports and then refuses the chunk', async () => {
    const { store } = await fresh();
    await store.write(300, 1, 0, pattern(2 * B + 5), { create: true, sync: false });
    await flipByte(store.chunkPath(300), DATA_BASE + B + 17);
    // The untouched block still reads fine.
    expect((await store.read(300, 1, 0, 100)).length).toBe(100);
    const err = await errOf(store.read(300, 1, B, 10));
    expect(err.code).toBe('EIO');
    expect(err.message).toContain('checksum mismatch in chunk 300 block 1');
    expect(store.takeCorrupt()).toEqual([300]);
    expect(store.takeCorrupt()).toEqual([]);
    expect((await errOf(store.read(300, 1, 0, 10))).code).toBe('EIO');
    expect((await errOf(store.write(300, 1, 0, Buffer.from('x'), { create: true, sync: false }))).code).toBe('EIO');
    expect(store.report()).toEqual([]);
  });

  it('verifies the old block before a partial overwrite and leaves the chunk alone when bad', async () => {
    const { store } = await fresh();
    await store.write(5, 1, 0, pattern(B + 10), { create: true, sync: false });
    await flipByte(store.chunkPath(5), DATA_BASE + 3);
    const before = await readFile(store.chunkPath(5));
    const err = await errOf(store.write(5, 1, 10, Buffer.from('hello'), { create: true, sync: false }));
    expect(err.code).toBe('EIO');
    same(await readFile(store.chunkPath(5)), before);
    expect(store.takeCorrupt()).toEqual([5]);
  });

  it('checks versions: ESTALE on mismatch, SetVersion rules', async () => {
    const { store } = await fresh();
    await store.write(11, 4, 0, Buffer.from('abc'), { create: true, sync: true });
    expect((await errOf(store.read(11, 3, 0, 3))).code).toBe('ESTALE');
    expect((await errOf(store.write(11, 5, 0, Buffer.from('x'), { create: true, sync: false }))).code).toBe('ESTALE');
    await store.setVersion(11, 4, 5);
    expect(store.info(11)!.version).toBe(5);
    await store.setVersion(11, 4, 5); // repeated: already there
    expect((await errOf(store.setVersion(11, 1, 2))).code).toBe('ESTALE');
    same(await store.read(11, 5, 0, 3), Buffer.from('abc'));
    await store.setVersion(12, 0, 8); // absent: created empty
    expect(store.info(12)).toMatchObject({ version: 8, length: 0 });
    expect((await errOf(store.read(13, 1, 0, 1))).code).toBe('ENOENT');
    expect((await errOf(store.write(13, 1, 0, Buffer.from('x'), { create: false, sync: false }))).code).toBe('ENOENT');
    // Version survives a restart.
    await store.close();
    const again = await ChunkStore.open(store.dataDir);
    stores.push(again);
    expect(again.info(11)!.version).toBe(5);
    expect(again.info(12)!.version).toBe(8);
  });

  it('truncates: shrink cuts data and checksums, grow zero-fills, version set', async () => {
    const { store } = await fresh();
    const data = pattern(3 * B + 9);
    await store.write(21, 1, 0, data, { create: true, sync: false });
    await store.truncate(21, 2, B + 100);
    expect(store.info(21)).toMatchObject({ version: 2, length: B + 100 });
    expect((await stat(store.chunkPath(21))).size).toBe(DATA_BASE + B + 100);
    same(await store.read(21, 2, 0, 4 * B), data.subarray(0, B + 100));
    await store.truncate(21, 3, 2 * B + 50);
    const grown = Buffer.concat([data.subarray(0, B + 100), Buffer.alloc(B - 50)]);
    same(await store.read(21, 3, 0, 4 * B), grown);
    await store.truncate(21, 3, 2 * B); // exact block boundary
    same(await store.read(21, 3, 0, 4 * B), grown.subarray(0, 2 * B));
    await store.truncate(21, 3, 0);
    expect((await store.read(21, 3, 0, 10)).length).toBe(0);
    expect((await errOf(store.truncate(21, 2, 10))).code).toBe('ESTALE');
    // Data written past a shrunk end never reappears as stale bytes.
    await store.write(21, 3, 0, Buffer.from('ab'), { create: false, sync: false });
    await store.write(21, 3, 10, Buffer.from('cd'), { create: false, sync: false });
    same(await store.read(21, 3, 0, 100), Buffer.from('ab\0\0\0\0\0\0\0\0cd', 'latin1'));
    expect(store.used).toBe(12);
  });

  it('rejects malformed handles and ranges without touching the disk', async () => {
    const { store } = await fresh();
    for (const h of [0, -1, 1.5, 2 ** 60, Number.NaN, Infinity]) {
      const err = await errOf(store.write(h, 1, 0, Buffer.from('x'), { create: true, sync: false }));
      expect(err.code).toBe('EINVAL');
      expect(err.message).toContain('bad chunk handle');
      expect((await errOf(store.read(h, 1, 0, 1))).code).toBe('EINVAL');
      expect((await errOf(store.setVersion(h, 0, 1))).code).toBe('EINVAL');
    }
    expect((await errOf(store.write(1, 1, 2 ** 30, Buffer.from('x'), { create: true, sync: false }))).code).toBe('EINVAL');
    expect((await errOf(store.write(1, 1, -5, Buffer.from('x'), { create: true, sync: false }))).code).toBe('EINVAL');
    expect(await store.delete([0, -3, 'x', 99])).toBe(0);
    expect(await readdir(store.chunksDir)).toEqual([]);
  });

  it('deletes chunk and meta; unknown handles are ignored', async () => {
    const { store } = await fresh();
    await store.write(257, 1, 0, Buffer.from('data'), { create: true, sync: false });
    expect(store.chunkPath(257)).toMatch(/chunks\/01\/257\.chunk$/);
    expect(await store.delete([257, 4242])).toBe(1);
    await expect(stat(store.chunkPath(257))).rejects.toThrow();
    await expect(stat(store.metaPath(257))).rejects.toThrow();
    expect(store.report()).toEqual([]);
    expect(store.used).toBe(0);
  });

  it('a large delete lets the event loop run between slices, and removes every file', async () => {
    const { store } = await fresh();
    const n = DELETE_SLICE * 4 + 3;
    const handles = Array.from({ length: n }, (_, i) => 1000 + i);
    for (const h of handles) await store.write(h, 1, 0, Buffer.from(`chunk ${h}`), { create: true, sync: false });
    let turns = 0;
    let done = false;
    const tick = () => {
      if (done) return;
      turns++;
      setImmediate(tick);
    };
    setImmediate(tick);
    expect(await store.delete(handles)).toBe(n);
    done = true;
    expect(turns).toBeGreaterThanOrEqual(4);
    for (const h of [handles[0]!, handles[n - 1]!]) {
      await expect(stat(store.chunkPath(h))).rejects.toThrow();
      await expect(stat(store.metaPath(h))).rejects.toThrow();
    }
    expect(store.report()).toEqual([]);
    expect(store.used).toBe(0);
  });

  it('meta: a torn or garbled file is rejected; at start-up the chunk is marked corrupt', async () => {
    const meta = { version: 3, length: B + 1, crcs: Uint32Array.from([1, 2]) };
    const buf = encodeMeta(meta, 7);
    expect(decodeMeta(buf)).toEqual({ ...meta, generation: 7, block: B });
    expect(() => decodeMeta(buf.subarray(0, buf.length - 2))).toThrow();
    const bad = Buffer.from(buf);
    bad[10] = bad[10]! ^ 1;
    expect(() => decodeMeta(bad)).toThrow(/checksum/);

    const { dir, store } = await fresh();
    await store.write(40, 2, 0, Buffer.from('hello'), { create: true, sync: true }); // generation 1: slot 1
    await store.write(41, 2, 0, Buffer.from('world'), { create: true, sync: true });
    await store.close();
    await flipByte(store.chunkPath(40), META_SLOT_BYTES + 10); // garbled
    await legacyChunk(store, 42, Buffer.from('older'), encodeMeta({ version: 2, length: 5, crcs: Uint32Array.from([crcOf(Buffer.from('older'))]) }, 1));
    const side = await readFile(store.metaPath(42));
    await writeFile(store.metaPath(42), side.subarray(0, side.length - 3)); // a torn sidecar
    await writeFile(`${store.metaPath(41)}.tmp`, 'half written'); // leftover temp
    await writeFile(store.chunkPath(296), 'orphan'); // data without meta (same shard as 40)
    const { store: again } = await fresh(dir);
    expect(again.takeCorrupt().sort()).toEqual([40, 42]);
    expect(again.report()).toEqual([{ handle: 41, version: 2, length: 5 }]);
    expect((await errOf(again.read(40, 2, 0, 5))).code).toBe('EIO');
    await expect(stat(`${again.metaPath(41)}.tmp`)).rejects.toThrow();
    await expect(stat(again.chunkPath(296))).rejects.toThrow();
  });

  it('meta: rewritten in place in alternate slots; a torn newest slot falls back to the one before', async () => {
    const { dir, store } = await fresh();
    await store.write(50, 1, 0, Buffer.from('hello'), { create: true, sync: false }); // generation 1
    await store.write(50, 1, 5, Buffer.from(' world'), { create: false, sync: false }); // generation 2
    await store.write(51, 1, 0, Buffer.from('one'), { create: true, sync: false });
    await store.write(51, 1, 3, Buffer.from('two'), { create: false, sync: false });
    await store.write(51, 1, 6, Buffer.from('six'), { create: false, sync: false }); // generation 3, slot 1
    const shard = await readdir(join(dir, 'chunks', (50 % 256).toString(16).padStart(2, '0')));
    expect(shard).toEqual(['50.chunk']); // one file: no sidecar, no temp files, no renames
    await store.close();
    const raw = await readFile(store.chunkPath(50));
    expect(decodeMeta(raw.subarray(META_SLOT_BYTES))).toMatchObject({ generation: 1, length: 5 });
    same(raw.subarray(DATA_BASE), Buffer.from('hello world'));
    const torn = Buffer.from(raw);
    torn[3] = torn[3]! ^ 0xff; // generation 2 lives in slot 0
    await writeFile(store.chunkPath(50), torn);
    const { store: again } = await fresh(dir);
    // Generation 1 is what is left: the chunk as it was before the torn write.
    expect(again.report().sort((a, b) => a.handle - b.handle)).toEqual([
      { handle: 50, version: 1, length: 5 },
      { handle: 51, version: 1, length: 9 },
    ]);
    same(await again.read(51, 1, 0, 9), Buffer.from('onetwosix'));
  });

  it('meta: a format 1 file (one meta, replaced by rename) is read, then rewritten in place', async () => {
    const { dir, store } = await fresh();
    await store.write(60, 4, 0, Buffer.from('legacy'), { create: true, sync: true });
    await store.close();
    const v1 = Buffer.alloc(28 + 4 + 4);
    v1.writeUInt32LE(0x4d534647, 0);
    v1.writeUInt32LE(1, 4);
    v1.writeBigUInt64LE(4n, 8);
    v1.writeBigUInt64LE(6n, 16);
    v1.writeUInt32LE(1, 24);
    v1.writeUInt32LE(crcOf(Buffer.from('legacy')), 28);
    v1.writeUInt32LE(crcOf(v1.subarray(0, 32)), 32);
    await legacyChunk(store, 60, Buffer.from('legacy'), v1);
    const { store: again } = await fresh(dir);
    expect(again.report()).toEqual([{ handle: 60, version: 4, length: 6 }]);
    await again.write(60, 4, 6, Buffer.from('!'), { create: false, sync: true });
    await again.close();
    const { store: third } = await fresh(dir);
    same(await third.read(60, 4, 0, 7), Buffer.from('legacy!'));
    expect(third.takeCorrupt()).toEqual([]);
    // Still a sidecar chunk: data at 0, the meta beside it; a delete takes both.
    same(await readFile(third.chunkPath(60)), Buffer.from('legacy!'));
    expect(decodeMeta(await readFile(third.metaPath(60))).length).toBe(7); // generation 2: slot 0
    expect(await third.delete([60])).toBe(1);
    await expect(stat(third.chunkPath(60))).rejects.toThrow();
    await expect(stat(third.metaPath(60))).rejects.toThrow();
  });

  it('a clone replacing a sidecar chunk installs one file, its meta at the head', async () => {
    const { dir, store } = await fresh();
    await store.write(80, 1, 0, Buffer.from('x'), { create: true, sync: true });
    await store.close();
    const old = Buffer.from('old bytes');
    await legacyChunk(store, 80, old, encodeMeta({ version: 1, length: old.length, crcs: Uint32Array.from([crcOf(old)]) }, 1));
    const { store: again } = await fresh(dir);
    expect(again.report()).toEqual([{ handle: 80, version: 1, length: old.length }]);

    const data = pattern(B + 7, 8);
    const { path, base } = await again.beginClone(80);
    const fh = await open(path, 'w+');
    await fh.write(data, 0, data.length, base);
    await fh.close();
    expect(await again.installClone(80, 2, data.length, Uint32Array.from([crcOf(data.subarray(0, B)), crcOf(data.subarray(B))]))).toBe(true);
    await again.endClone(80);
    expect((await readdir(dirname(again.chunkPath(80)))).sort()).toEqual(['80.chunk']);
    same(await again.read(80, 2, 0, 2 * B), data);
    await again.write(80, 2, 3, Buffer.from('new'), { create: false, sync: true });
    await again.close();
    const { store: third } = await fresh(dir);
    same(await third.read(80, 2, 0, 2 * B), Buffer.concat([data.subarray(0, 3), Buffer.from('new'), data.subarray(6)]));
    expect(third.takeCorrupt()).toEqual([]);
  });

  /** A format 2 slot, as gfs wrote them before format 3: one checksum per 64 KiB. */
  function metaV2(version: number, data: Buffer, generation: number): Buffer {
    const LB = 64 * 1024;
    const n = Math.ceil(data.length / LB);
    const b = Buffer.alloc(36 + 4 * n + 4);
    b.writeUInt32LE(0x4d534647, 0);
    b.writeUInt32LE(2, 4);
    b.writeBigUInt64LE(BigInt(version), 8);
    b.writeBigUInt64LE(BigInt(data.length), 16);
    b.writeBigUInt64LE(BigInt(generation), 24);
    b.writeUInt32LE(n, 32);
    for (let i = 0; i < n; i++) b.writeUInt32LE(crcOf(data.subarray(i * LB, (i + 1) * LB)), 36 + 4 * i);
    b.writeUInt32LE(crcOf(b.subarray(0, 36 + 4 * n)), 36 + 4 * n);
    return b;
  }
  /** Format 2 kept its second slot here (the checksums of a 1 GiB chunk at 64 KiB each). */
  const V2_SLOT = 69632;

  it('meta: a format 2 chunk (64 KiB checksums) is verified, re-checksummed and moved to format 3 in its own slot', async () => {
    const { dir, store } = await fresh();
    const data = pattern(3 * 65536 + 100, 5);
    await store.write(70, 3, 0, data, { create: true, sync: true });
    await store.close();
    // Generation 2 in slot 0 is current; slot 1 holds an older meta of the same chunk.
    const file = Buffer.alloc(V2_SLOT + 36 + 4 * 4 + 4);
    metaV2(3, data, 2).copy(file, 0);
    metaV2(2, data.subarray(0, 65536), 1).copy(file, V2_SLOT);
    await legacyChunk(store, 70, data, file);

    const { store: again } = await fresh(dir);
    expect(again.report()).toEqual([{ handle: 70, version: 3, length: data.length }]);
    same(await again.read(70, 3, 65536 + 7, 4096), data.subarray(65536 + 7, 65536 + 7 + 4096));
    // Moved: format 3 at generation 3, in the slot format 2 never used; slot 0 left as it was.
    const raw = await readFile(again.metaPath(70));
    const moved = decodeMeta(raw.subarray(META_SLOT_BYTES));
    expect(moved).toMatchObject({ version: 3, length: data.length, generation: 3, block: B });
    expect(moved.crcs.length).toBe(Math.ceil(data.length / B));
    expect(decodeMeta(raw).generation).toBe(2);
    // Writes go on from there, and a restart reads format 3.
    await again.write(70, 3, data.length, Buffer.from('tail'), { create: false, sync: true });
    await again.close();
    const { store: third } = await fresh(dir);
    same(await third.read(70, 3, 0, data.length + 4), Buffer.concat([data, Buffer.from('tail')]));
    expect(third.takeCorrupt()).toEqual([]);
  });

  it('meta: a format 2 chunk with a bad byte is marked corrupt when first read, never re-checksummed over it', async () => {
    const { dir, store } = await fresh();
    const data = pattern(2 * 65536, 6);
    await store.write(71, 1, 0, data, { create: true, sync: true });
    await store.close();
    await legacyChunk(store, 71, data, metaV2(1, data, 1));
    await flipByte(store.chunkPath(71), 65536 + 60_000); // in legacy block 1, far from the read below
    const { store: again } = await fresh(dir);
    expect((await errOf(again.read(71, 1, 65536, 4096))).code).toBe('EIO');
    expect(again.takeCorrupt()).toEqual([71]);
    expect(decodeMeta(await readFile(again.metaPath(71))).block).toBe(65536); // meta untouched
  });

  it('flushes a chunk in the background as it is written, and a chunk deleted meanwhile stays deleted', async () => {
    const { store } = await fresh();
    const piece = pattern(WRITE_BEHIND_BYTES / 2, 3);
    for (let i = 0; i < 4; i++) await store.write(5, 1, i * piece.length, piece, { create: true, sync: false });
    // Two marks passed: one flush ran at the first, the second queued or ran after it.
    for (let t = 0; t < 500 && store.writeBehindFlushes < 2; t++) await new Promise((r) => setTimeout(r, 10));
    expect(store.writeBehindFlushes).toBe(2);
    same(await store.read(5, 1, 3 * piece.length, piece.length), piece);

    // Chunk 6 passes the mark while 7's flush may be running; deleted before its turn, it is
    // never reopened (which would re-create its file).
    await store.write(7, 1, 0, pattern(WRITE_BEHIND_BYTES, 4), { create: true, sync: false });
    await store.write(6, 1, 0, pattern(WRITE_BEHIND_BYTES, 5), { create: true, sync: false });
    expect(await store.delete([6])).toBe(1);
    await store.sync(7, 1);
    for (let t = 0; t < 500 && store.writeBehindFlushes < 3; t++) await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setTimeout(r, 50));
    await expect(stat(store.chunkPath(6))).rejects.toThrow();
    expect(store.takeCorrupt()).toEqual([]);
    expect(store.report().map((c) => c.handle)).toEqual([5, 7]);
  });

  it('serves concurrent reads and writes of one chunk without false corruption', async () => {
    const { store } = await fresh();
    await store.write(77, 1, 0, pattern(4 * B), { create: true, sync: false });
    const jobs: Promise<unknown>[] = [];
    for (let i = 0; i < 40; i++) {
      jobs.push(store.write(77, 1, (i * 977) % (3 * B), pattern(B / 2, i), { create: false, sync: false }));
      jobs.push(store.read(77, 1, (i * 1231) % (3 * B), B));
    }
    await Promise.all(jobs);
    expect(store.takeCorrupt()).toEqual([]);
    expect((await store.read(77, 1, 0, 4 * B)).length).toBe(4 * B);
  });
});
