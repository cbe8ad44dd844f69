// The `<handle>.meta` file beside each chunk: chunk version, length and one CRC32 per block,
// in two slots written alternately in place. Each slot carries a generation and a CRC32 of
// itself; the valid slot of the highest generation is the meta. A torn write spoils only the
// slot being written, so a crash leaves the previous meta, never a half-written one that
// looks trustworthy (the chunk then fails its checksums and is re-replicated, as with any
// torn write that was never acknowledged).
//
// Why not write-temp-and-rename: every rename over the old file deletes an inode, and on
// ext4 without a journal each deleted inode is skipped by the allocator for up to five
// minutes, scanned again on every later create. With a meta rewrite per chunk write this made
// inode allocation ~45% of a chunkserver's CPU during small-file workloads.
import { closeSync, constants as fsConstants, openSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { writeFullSync } from './chunk-io.js';
import { blockCount, crcOf } from './checksum.js';
import { MAX_CHUNK_BYTES } from './validate.js';

const MAGIC = 0x4d534647; // "GFSM" little-endian
export const META_FORMAT = 2;
/** Format 1 (one meta per file, replaced by rename) is still read, as generation 1. */
const FORMAT_V1 = 1;
const HEADER_V1 = 4 + 4 + 8 + 8 + 4; // magic, format, version, length, nblocks
const HEADER = 4 + 4 + 8 + 8 + 8 + 4; // magic, format, version, length, generation, nblocks
/** Offset of the second slot: the first has room for the checksums of the largest chunk. */
export const META_SLOT_BYTES = Math.ceil((HEADER + 4 * blockCount(MAX_CHUNK_BYTES) + 4) / 4096) * 4096;

export interface ChunkMeta {
  version: number;
  length: number;
  crcs: Uint32Array;
}

/** A meta as stored: which write of the file it came from. */
export interface StoredMeta extends ChunkMeta {
  generation: number;
}

export function encodeMeta(meta: ChunkMeta, generation: number): Buffer {
  const n = meta.crcs.length;
  const buf = Buffer.alloc(HEADER + 4 * n + 4);
  buf.writeUInt32LE(MAGIC, 0);
  buf.writeUInt32LE(META_FORMAT, 4);
  buf.writeBigUInt64LE(BigInt(meta.version), 8);
  buf.writeBigUInt64LE(BigInt(meta.length), 16);
  buf.writeBigUInt64LE(BigInt(generation), 24);
  buf.writeUInt32LE(n, 32);
  for (let i = 0; i < n; i++) buf.writeUInt32LE(meta.crcs[i]!, HEADER + 4 * i);
  buf.writeUInt32LE(crcOf(buf.subarray(0, HEADER + 4 * n)), HEADER + 4 * n);
  return buf;
}

/** Header size and whole size of the slot starting at buf[0], as its header declares them (bytes after it are ignored). */
function slotLayout(buf: Buffer): { header: number; size: number } {
  if (buf.length < 8) throw new Error(`meta too short (${buf.length} bytes)`);
  if (buf.readUInt32LE(0) !== MAGIC) throw new Error('bad meta magic');
  const format = buf.readUInt32LE(4);
  const header = format === META_FORMAT ? HEADER : format === FORMAT_V1 ? HEADER_V1 : -1;
  if (header < 0) throw new Error(`unknown meta format ${format}`);
  if (buf.length < header) throw new Error(`meta too short (${buf.length} bytes)`);
  const n = buf.readUInt32LE(header - 4);
  if (n > blockCount(MAX_CHUNK_BYTES)) throw new Error(`meta claims ${n} blocks`);
  return { header, size: header + 4 * n + 4 };
}

/** Parses the slot at the start of buf; throws Error with the reason when it is not a valid, whole meta. */
export function decodeMeta(buf: Buffer): StoredMeta {
  const { header, size } = slotLayout(buf);
  if (buf.length < size) throw new Error(`meta of ${buf.length} bytes, its header declares ${size}`);
  const n = (size - header - 4) / 4;
  if (crcOf(buf.subarray(0, header + 4 * n)) !== buf.readUInt32LE(header + 4 * n)) throw new Error('meta checksum mismatch');
  const version = Number(buf.readBigUInt64LE(8));
  const length = Number(buf.readBigUInt64LE(16));
  const generation = header === HEADER_V1 ? 1 : Number(buf.readBigUInt64LE(24));
  if (!Number.isSafeInteger(version) || !Number.isSafeInteger(length) || !Number.isSafeInteger(generation)) throw new Error('meta numbers out of range');
  if (blockCount(length) !== n) throw new Error(`meta has ${n} checksums for length ${length}`);
  const crcs = new Uint32Array(n);
  for (let i = 0; i < n; i++) crcs[i] = buf.readUInt32LE(header + 4 * i);
  return { version, length, crcs, generation };
}

export interface MetaWrite {
  /** The slot is on disk when this resolves (the file's name is the caller's: syncDir). */
  durable: boolean;
  /** No meta file yet, or its old content is to be dropped: the file is created or emptied. */
  fresh: boolean;
}

/**
 * Writes `meta` as `generation` into its slot (generation mod 2), leaving the other slot,
 * the previous meta, untouched. Without `durable` it is all page-cache work, done synchronously.
 */
export async function writeMetaFile(path: string, meta: ChunkMeta, generation: number, w: MetaWrite): Promise<void> {
  const buf = encodeMeta(meta, generation);
  const at = (generation % 2) * META_SLOT_BYTES;
  const flags = w.fresh ? fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_TRUNC : fsConstants.O_WRONLY;
  if (!w.durable) {
    const fd = openSync(path, flags, 0o644);
    try {
      writeFullSync(fd, buf, at);
    } finally {
      closeSync(fd);
    }
    return;
  }
  const fh = await open(path, flags, 0o644);
  try {
    await fh.write(buf, 0, buf.length, at);
    await fh.datasync();
  } finally {
    await fh.close();
  }
}

/** The meta of the newest valid slot; throws Error with the reasons when neither is valid. */
export async function readMetaFile(path: string): Promise<StoredMeta> {
  const fh = await open(path, 'r');
  try {
    const size = (await fh.stat()).size;
    const slot = async (at: number): Promise<StoredMeta> => {
      if (size <= at) throw new Error('empty slot');
      const head = Buffer.alloc(Math.min(HEADER, size - at));
      await fh.read(head, 0, head.length, at);
      const buf = Buffer.alloc(Math.min(slotLayout(head).size, size - at));
      await fh.read(buf, 0, buf.length, at);
      return decodeMeta(buf);
    };
    const [a, b] = await Promise.allSettled([slot(0), slot(META_SLOT_BYTES)]);
    if (a.status === 'fulfilled' && b.status === 'fulfilled') return a.value.generation >= b.value.generation ? a.value : b.value;
    if (a.status === 'fulfilled') return a.value;
    if (b.status === 'fulfilled') return b.value;
    throw new Error(`no valid meta slot: ${(a.reason as Error).message}; ${(b.reason as Error).message}`);
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
