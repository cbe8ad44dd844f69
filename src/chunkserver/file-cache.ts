// A bounded LRU of open chunk files, so hot chunks are not reopened on every call. A file
// evicted while an operation still uses it is closed when that operation finishes.
//
// Files are raw descriptors (ChunkFile) opened synchronously: an open of a page-cached file
// costs tens of microseconds in the kernel but several times that when handed to the libuv
// pool and back, and a small write pays it on every new chunk. Reads and large writes still
// go through the pool (they may wait for the disk).
import { closeSync, constants as fsConstants, fdatasync, ftruncate, openSync, read, write } from 'node:fs';
import { LRUCache } from 'lru-cache';
import { readFullSync, writeFullSync } from './chunk-io.js';

/** Open chunk files kept at most. */
export const OPEN_FILES_MAX = 256;

/**
 * An open chunk file: reads and writes of its data (async ones shaped like FileHandle's),
 * positions counted from `base`, where the data starts in the file (after the meta slots,
 * chunk-meta.ts). `fd` is the whole file, for the meta.
 */
export class ChunkFile {
  constructor(
    readonly fd: number,
    readonly base = 0,
  ) {}

  read(buf: Uint8Array, off: number, len: number, pos: number): Promise<{ bytesRead: number }> {
    return new Promise((resolve, reject) => read(this.fd, buf, off, len, this.base + pos, (err, n) => (err ? reject(err) : resolve({ bytesRead: n }))));
  }

  write(buf: Uint8Array, off: number, len: number, pos: number): Promise<{ bytesWritten: number }> {
    return new Promise((resolve, reject) => write(this.fd, buf, off, len, this.base + pos, (err, n) => (err ? reject(err) : resolve({ bytesWritten: n }))));
  }

  /** readFullSync of the data (small reads, see SYNC_READ_MAX). */
  readSync(pos: number, n: number, into?: Buffer): Buffer {
    return readFullSync(this.fd, this.base + pos, n, into);
  }

  /** writeFullSync of the data (small writes, see SYNC_WRITE_MAX). */
  writeSync(data: Uint8Array, pos: number): void {
    writeFullSync(this.fd, data, this.base + pos);
  }

  /** Cuts or extends the data to `len` bytes (the meta slots before `base` stay). */
  truncate(len: number): Promise<void> {
    return new Promise((resolve, reject) => ftruncate(this.fd, this.base + len, (err) => (err ? reject(err) : resolve())));
  }

  datasync(): Promise<void> {
    return new Promise((resolve, reject) => fdatasync(this.fd, (err) => (err ? reject(err) : resolve())));
  }

  close(): void {
    try {
      closeSync(this.fd);
    } catch {
      // already closed
    }
  }
}

interface Entry {
  file: ChunkFile;
  refs: number;
  evicted: boolean;
}

export class FileCache {
  private readonly lru: LRUCache<number, Entry>;

  constructor(max = OPEN_FILES_MAX) {
    this.lru = new LRUCache<number, Entry>({
      max,
      dispose: (entry) => {
        entry.evicted = true;
        if (entry.refs === 0) entry.file.close();
      },
    });
  }

  /** Runs fn with the chunk file open read-write (created when `create`), its data from `base`. */
  async use<T>(handle: number, path: string, base: number, create: boolean, fn: (f: ChunkFile) => Promise<T> | T): Promise<T> {
    const entry = this.acquire(handle, path, base, create);
    try {
      return await fn(entry.file);
    } finally {
      entry.refs--;
      if (entry.evicted && entry.refs === 0) entry.file.close();
    }
  }

  private acquire(handle: number, path: string, base: number, create: boolean): Entry {
    const cached = this.lru.get(handle);
    if (cached && !cached.evicted) {
      cached.refs++;
      return cached;
    }
    const fd = openSync(path, fsConstants.O_RDWR | (create ? fsConstants.O_CREAT : 0), 0o644);
    const entry: Entry = { file: new ChunkFile(fd, base), refs: 1, evicted: false };
    this.lru.set(handle, entry);
    return entry;
  }

  /** Closes the chunk's file (before delete); callers hold the chunk's exclusive lock. */
  forget(handle: number): void {
    this.lru.delete(handle); // dispose closes it once unused
  }

  /** Closes every file no operation is using; files in use close when their operation ends. */
  async closeAll(): Promise<void> {
    this.lru.clear();
  }
}
