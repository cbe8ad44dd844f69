// Small file I/O helpers for chunk files: whole reads and writes at an offset, and fs errors
// turned into GfsErrors (ENOSPC stays ENOSPC, the rest is EIO).
import { readSync, writeSync } from 'node:fs';
import { GfsError } from '../common/errors.js';
import { KiB } from '../common/limits.js';

/**
 * Writes up to this size are made synchronously: into the page cache they take microseconds,
 * less than the hand-off to the libuv pool and back. Larger ones go through the pool.
 */
export const SYNC_WRITE_MAX = 256 * KiB;

/** What readFull/writeFull need of a file (a FileHandle or a ChunkFile). */
export interface RandomAccessFile {
  read(buf: Uint8Array, off: number, len: number, pos: number): Promise<{ bytesRead: number }>;
  write(buf: Uint8Array, off: number, len: number, pos: number): Promise<{ bytesWritten: number }>;
}

/** `f` with positions counted from `base` (where a chunk file's data starts, chunk-meta.ts). */
export function fromBase(f: RandomAccessFile, base: number): RandomAccessFile {
  return {
    read: (buf, off, len, pos) => f.read(buf, off, len, base + pos),
    write: (buf, off, len, pos) => f.write(buf, off, len, base + pos),
  };
}

export function ioError(err: unknown, what: string): GfsError {
  if (err instanceof GfsError) return err;
  const code = (err as NodeJS.ErrnoException)?.code;
  const msg = `${what}: ${(err as Error)?.message ?? String(err)}`;
  return new GfsError(code === 'ENOSPC' ? 'ENOSPC' : 'EIO', msg);
}

/** `into`: where the bytes go (at least n long); a fresh buffer otherwise. */
export async function readFull(fh: RandomAccessFile, pos: number, n: number, into?: Buffer): Promise<Buffer> {
  const buf = into ? into.subarray(0, n) : Buffer.allocUnsafe(n);
  let got = 0;
  while (got < n) {
    const { bytesRead } = await fh.read(buf, got, n - got, pos + got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  buf.fill(0, got); // zeros past EOF, so a short file fails its checksums
  return buf;
}

export async function writeFull(fh: RandomAccessFile, data: Uint8Array, pos: number): Promise<void> {
  let done = 0;
  while (done < data.length) {
    const { bytesWritten } = await fh.write(data, done, data.length - done, pos + done);
    done += bytesWritten;
  }
}

/** writeFull on a descriptor, synchronously (for writes of at most SYNC_WRITE_MAX). */
export function writeFullSync(fd: number, data: Uint8Array, pos: number): void {
  let done = 0;
  while (done < data.length) done += writeSync(fd, data, done, data.length - done, pos + done);
}

/**
 * Reads up to this size are made synchronously. From the page cache they take microseconds;
 * the hand-off to the libuv pool and back costs more than that on a busy machine. A read the
 * disk must serve blocks this server's loop for its seek (its other requests wait), which is
 * what a thread-pool read costs the caller anyway.
 */
export const SYNC_READ_MAX = 128 * KiB;

/** readFull on a descriptor, synchronously (for reads of at most SYNC_READ_MAX). */
export function readFullSync(fd: number, pos: number, n: number, into?: Buffer): Buffer {
  const buf = into ? into.subarray(0, n) : Buffer.allocUnsafe(n);
  let got = 0;
  while (got < n) {
    const r = readSync(fd, buf, got, n - got, pos + got);
    if (r === 0) break;
    got += r;
  }
  buf.fill(0, got);
  return buf;
}
