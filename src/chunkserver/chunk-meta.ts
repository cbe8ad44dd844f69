// A chunk's meta: version, length, checksum block size and one CRC32 per block, in two slots
// written alternately in place. Each slot carries a generation and a CRC32 of itself; the
// valid slot of the highest generation is the meta. A torn write spoils only the slot being
// written, so a crash leaves the previous meta, never a half-written one that looks
// trustworthy (the chunk then fails its checksums and is re-replicated, as with any torn write
// that was never acknowledged).
//
// Where the slots live: at the head of the chunk file itself, the data following at
// DATA_BASE (one file per chunk, as MooseFS keeps its header). Chunks written before this
// layout keep theirs in a `<handle>.meta` file beside the data (a "sidecar"), read and
// rewritten in place as before. One file instead of two makes a sync one fdatasync (an fsync
// of a new small file went from ~9 to ~7.6 ms), a cold load of a chunk's checksums one read
// through the open file, and halves the inodes and directory entries per chunk. (It did not
// make `tar -x` faster: on ext4 without a journal each create re-scans the inodes freed in
// the last minutes, and with half the creates each one took about twice as long.)
//
// Why not write-temp-and-rename: every rename over the old file deletes an inode (the same
// allocator cost), and a meta is rewritten on every chunk write.
import { closeSync, constants as fsConstants, openSync, readSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { readFullSync, writeFullSync } from './chunk-io.js';
import { BLOCK, crcOf } from './checksum.js';
import { MAX_CHUNK_BYTES } from './validate.js';

const MAGIC = 0x4d534647; // "GFSM" little-endian
export const META_FORMAT = 3;
const HEADER = 4 + 4 + 8 + 8 + 8 + 4 + 4; // magic, format, version, length, generation, block, nblocks
/**
 * Formats 1 and 2 checksum blocks of LEGACY_BLOCK bytes and are still read: format 2 in its two
 * slots (the second at LEGACY_SLOT_BYTES), format 1 (one meta per file, replaced by rename) as
 * generation 1. The store re-checksums such a chunk and writes format 3 (chunk-store.ts).
 */
const FORMAT_V1 = 1;
const FORMAT_V2 = 2;
const HEADER_V1 = 4 + 4 + 8 + 8 + 4; // magic, format, version, length, nblocks
const HEADER_V2 = 4 + 4 + 8 + 8 + 8 + 4; // magic, format, version, length, generation, nblocks
export const LEGACY_BLOCK = 64 * 1024;
/** A block size a meta may declare: a power of two in this range. */
const MIN_BLOCK = 512;
const MAX_BLOCK = 1024 * 1024;

const blocksOf = (length: number, block: number) => Math.ceil(length / block);
const slotBytes = (header: number, block: number) => Math.ceil((header + 4 * blocksOf(MAX_CHUNK_BYTES, block) + 4) / 4096) * 4096;
/** Offset of the second slot: the first has room for the checksums of the largest chunk. */
export const META_SLOT_BYTES = slotBytes(HEADER, BLOCK);
/** Where a chunk's data starts in its file, after both slots (a sidecar's data file: at 0). */
export const DATA_BASE = 2 * META_SLOT_BYTES;
/** Where the slot of `generation` starts. */
export const slotOffset = (generation: number) => (generation % 2) * META_SLOT_BYTES;
/** Bytes of a current-format slot for a chunk of `length` bytes. */
const slotLength = (length: number) => HEADER + 4 * blocksOf(length, BLOCK) + 4;
const LEGACY_SLOT_BYTES = slotBytes(HEADER_V2, LEGACY_BLOCK);
/** Checksums are copied as bytes where the host's order is the file's. */
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

export interface ChunkMeta {
  version: number;
  length: number;
  /** One per BLOCK bytes (what this code writes). */
  crcs: Uint32Array;
}

/** A meta as stored: which write of the file it came from, and the block size of its checksums. */
export interface StoredMeta extends ChunkMeta {
  generation: number;
  /** Bytes per checksum; `crcs` are per this many bytes, not necessarily BLOCK. */
  block: number;
}

export function encodeMeta(meta: ChunkMeta, generation: number): Buffer {
  const n = meta.crcs.length;
  const buf = Buffer.alloc(HEADER + 4 * n + 4);
  buf.writeUInt32LE(MAGIC, 0);
  buf.writeUInt32LE(META_FORMAT, 4);
  buf.writeBigUInt64LE(BigInt(meta.version), 8);
  buf.writeBigUInt64LE(BigInt(meta.length), 16);
  buf.writeBigUInt64LE(BigInt(generation), 24);
  buf.writeUInt32LE(BLOCK, 32);
  buf.writeUInt32LE(n, 36);
  // A full chunk has 16,384 checksums and every write of it rewrites them all.
  if (LITTLE_ENDIAN) buf.set(new Uint8Array(meta.crcs.buffer, meta.crcs.byteOffset, 4 * n), HEADER);
  else for (let i = 0; i < n; i++) buf.writeUInt32LE(meta.crcs[i]!, HEADER + 4 * i);
  buf.writeUInt32LE(crcOf(buf.subarray(0, HEADER + 4 * n)), HEADER + 4 * n);
  return buf;
}

interface SlotLayout {
  header: number;
  /** The whole slot: header, checksums and the slot's own CRC. */
  size: number;
  block: number;
  format: number;
}

/** The layout of the slot starting at buf[0], as its header declares it (bytes after it are ignored). */
function slotLayout(buf: Buffer): SlotLayout {
  if (buf.length < 8) throw new Error(`meta too short (${buf.length} bytes)`);
  if (buf.readUInt32LE(0) !== MAGIC) throw new Error('bad meta magic');
  const format = buf.readUInt32LE(4);
  const header = format === META_FORMAT ? HEADER : format === FORMAT_V2 ? HEADER_V2 : format === FORMAT_V1 ? HEADER_V1 : -1;
  if (header < 0) throw new Error(`unknown meta format ${format}`);
  if (buf.length < header) throw new Error(`meta too short (${buf.length} bytes)`);
  const block = format === META_FORMAT ? buf.readUInt32LE(32) : LEGACY_BLOCK;
  if (block < MIN_BLOCK || block > MAX_BLOCK || (block & (block - 1)) !== 0) throw new Error(`meta declares a checksum block of ${block} bytes`);
  const n = buf.readUInt32LE(header - 4);
  if (n > blocksOf(MAX_CHUNK_BYTES, block)) throw new Error(`meta claims ${n} blocks`);
  return { header, size: header + 4 * n + 4, block, format };
}

/** Parses the slot at the start of buf; throws Error with the reason when it is not a valid, whole meta. */
export function decodeMeta(buf: Buffer): StoredMeta {
  const { header, size, block } = slotLayout(buf);
  if (buf.length < size) throw new Error(`meta of ${buf.length} bytes, its header declares ${size}`);
  const n = (size - header - 4) / 4;
  if (crcOf(buf.subarray(0, header + 4 * n)) !== buf.readUInt32LE(header + 4 * n)) throw new Error('meta checksum mismatch');
  const version = Number(buf.readBigUInt64LE(8));
  const length = Number(buf.readBigUInt64LE(16));
  const generation = header === HEADER_V1 ? 1 : Number(buf.readBigUInt64LE(24));
  if (!Number.isSafeInteger(version) || !Number.isSafeInteger(length) || !Number.isSafeInteger(generation)) throw new Error('meta numbers out of range');
  if (blocksOf(length, block) !== n) throw new Error(`meta has ${n} checksums for length ${length}`);
  const crcs = new Uint32Array(n);
  if (LITTLE_ENDIAN) new Uint8Array(crcs.buffer).set(buf.subarray(header, header + 4 * n));
  else for (let i = 0; i < n; i++) crcs[i] = buf.readUInt32LE(header + 4 * i);
  return { version, length, crcs, generation, block };
}

/** Writes `meta` as `generation` into its slot of the open file `fd` (page-cache work). */
export function writeMetaSlotSync(fd: number, meta: ChunkMeta, generation: number): void {
  writeFullSync(fd, encodeMeta(meta, generation), slotOffset(generation));
}

/**
 * The meta in the slot of `generation` of the open file `fd`, which must hold exactly that
 * generation for a chunk of `length` bytes (what the store wrote last): one read. Throws
 * Error with the reason otherwise.
 */
export function readMetaSlotSync(fd: number, generation: number, length: number): StoredMeta {
  const meta = decodeMeta(readFullSync(fd, slotOffset(generation), slotLength(length)));
  if (meta.generation !== generation) throw new Error(`meta slot holds generation ${meta.generation}, expected ${generation}`);
  return meta;
}

/** True when neither slot of the file at `path` was ever written (no magic): a create cut short. */
export function metaUnwritten(path: string): boolean {
  const fd = openSync(path, 'r');
  try {
    const b = Buffer.alloc(4);
    return [0, META_SLOT_BYTES].every((at) => readSync(fd, b, 0, 4, at) < 4 || b.readUInt32LE(0) !== MAGIC);
  } finally {
    closeSync(fd);
  }
}

/**
 * Writes `meta` as `generation` into its slot of an existing file, leaving the other slot, the
 * previous meta, untouched: a sidecar, or a closed chunk file (a clone before it takes the
 * chunk's name). Without `durable` it is all page-cache work, done synchronously; with it, the
 * slot is on disk when this resolves (the file's name is the caller's: syncDir).
 */
export async function writeMetaFile(path: string, meta: ChunkMeta, generation: number, durable: boolean): Promise<void> {
  const buf = encodeMeta(meta, generation);
  const at = slotOffset(generation);
  if (!durable) {
    const fd = openSync(path, fsConstants.O_WRONLY);
    try {
      writeFullSync(fd, buf, at);
    } finally {
      closeSync(fd);
    }
    return;
  }
  const fh = await open(path, fsConstants.O_WRONLY);
  try {
    await fh.write(buf, 0, buf.length, at);
    await fh.datasync();
  } finally {
    await fh.close();
  }
}

/**
 * The meta of the newest valid slot; throws Error with the reasons when none is valid. A
 * sidecar last written in format 2 has its second slot at LEGACY_SLOT_BYTES; a format 2 slot
 * left there after the file moved to format 3 is older than the format 3 slots, so never
 * chosen. `withData`: the file is a chunk file (data from DATA_BASE), never in format 2.
 */
export async function readMetaFile(path: string, withData = false): Promise<StoredMeta> {
  const fh = await open(path, 'r');
  try {
    const size = withData ? Math.min((await fh.stat()).size, DATA_BASE) : (await fh.stat()).size;
    const slot = async (at: number, legacyOnly = false): Promise<StoredMeta> => {
      if (size <= at) throw new Error('empty slot');
      const head = Buffer.alloc(Math.min(HEADER, size - at));
      await fh.read(head, 0, head.length, at);
      const layout = slotLayout(head);
      if (legacyOnly && layout.format !== FORMAT_V2) throw new Error(`format ${layout.format} in the format 2 slot`);
      const buf = Buffer.alloc(Math.min(layout.size, size - at));
      await fh.read(buf, 0, buf.length, at);
      return decodeMeta(buf);
    };
    const slots = await Promise.allSettled(withData ? [slot(0), slot(META_SLOT_BYTES)] : [slot(0), slot(META_SLOT_BYTES), slot(LEGACY_SLOT_BYTES, true)]);
    let best: StoredMeta | undefined;
    for (const s of slots) if (s.status === 'fulfilled' && (!best || s.value.generation > best.generation)) best = s.value;
    if (best) return best;
    throw new Error(`no valid meta slot: ${slots.map((s) => ((s as PromiseRejectedResult).reason as Error).message).join('; ')}`);
  } finally {
    await fh.close();
  }
}

export async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } catch {
    // Some filesystems refuse fsync on a directory; the names are as durable as they allow.
  } finally {
    await fh.close();
  }
}
