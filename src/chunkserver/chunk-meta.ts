// The `<handle>.meta` file beside each chunk: format version, chunk version, length and one
// CRC32 per block, followed by a CRC32 of everything before it. It is replaced atomically
// (write temp, rename over), and the trailing CRC rejects a torn or garbled file, so a crash
// can neither make good data look corrupt through a half-written meta nor make a bad meta
// look trustworthy.
import { closeSync, openSync, renameSync } from 'node:fs';
import { open, rename } from 'node:fs/promises';
import { writeFullSync } from './chunk-io.js';
import { dirname } from 'node:path';
import { blockCount, crcOf } from './checksum.js';

const MAGIC = 0x4d534647; // "GFSM" little-endian
export const META_FORMAT = 1;
const HEADER = 4 + 4 + 8 + 8 + 4; // magic, format, version, length, nblocks

export interface ChunkMeta {
  version: number;
  length: number;
  crcs: Uint32Array;
}

export function encodeMeta(meta: ChunkMeta): Buffer {
  const n = meta.crcs.length;
  const buf = Buffer.alloc(HEADER + 4 * n + 4);
  buf.writeUInt32LE(MAGIC, 0);
  buf.writeUInt32LE(META_FORMAT, 4);
  buf.writeBigUInt64LE(BigInt(meta.version), 8);
  buf.writeBigUInt64LE(BigInt(meta.length), 16);
  buf.writeUInt32LE(n, 24);
  for (let i = 0; i < n; i++) buf.writeUInt32LE(meta.crcs[i]!, HEADER + 4 * i);
  buf.writeUInt32LE(crcOf(buf.subarray(0, HEADER + 4 * n)), HEADER + 4 * n);
  return buf;
}

/** Parses a meta file; throws Error with the reason when it is not a valid, whole meta. */
export function decodeMeta(buf: Buffer): ChunkMeta {
  if (buf.length < HEADER + 4) throw new Error(`meta too short (${buf.length} bytes)`);
  if (buf.readUInt32LE(0) !== MAGIC) throw new Error('bad meta magic');
  const format = buf.readUInt32LE(4);
  if (format !== META_FORMAT) throw new Error(`unknown meta format ${format}`);
  const n = buf.readUInt32LE(24);
  if (buf.length !== HEADER + 4 * n + 4) throw new Error(`meta size ${buf.length} does not match ${n} blocks`);
  if (crcOf(buf.subarray(0, HEADER + 4 * n)) !== buf.readUInt32LE(HEADER + 4 * n)) throw new Error('meta checksum mismatch');
  const version = Number(buf.readBigUInt64LE(8));
  const length = Number(buf.readBigUInt64LE(16));
  if (!Number.isSafeInteger(version) || !Number.isSafeInteger(length)) throw new Error('meta numbers out of range');
  if (blockCount(length) !== n) throw new Error(`meta has ${n} checksums for length ${length}`);
  const crcs = new Uint32Array(n);
  for (let i = 0; i < n; i++) crcs[i] = buf.readUInt32LE(HEADER + 4 * i);
  return { version, length, crcs };
}

/**
 * Replaces `path` atomically. With `durable`, the new meta and the rename are on disk on
 * return; without, it is all page-cache work, done synchronously (see SYNC_WRITE_MAX).
 */
export async function writeMetaFile(path: string, meta: ChunkMeta, durable: boolean): Promise<void> {
  const tmp = `${path}.tmp`;
  if (!durable) {
    const fd = openSync(tmp, 'w');
    try {
      writeFullSync(fd, encodeMeta(meta), 0);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
    return;
  }
  const fh = await open(tmp, 'w');
  try {
    await fh.writeFile(encodeMeta(meta));
    if (durable) await fh.datasync();
  } finally {
    await fh.close();
  }
  await rename(tmp, path);
  if (durable) await syncDir(dirname(path));
}

export async function readMetaFile(path: string): Promise<ChunkMeta> {
  const fh = await open(path, 'r');
  try {
    return decodeMeta(await fh.readFile());
  } finally {
    await fh.close();
  }
}

export async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } catch {
    // Some filesystems refuse fsync on a directory; the rename is as durable as they allow.
  } finally {
    await fh.close();
  }
}
