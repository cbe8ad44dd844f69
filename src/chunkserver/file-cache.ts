// A bounded LRU of open chunk FileHandles, so hot chunks are not reopened on every call. A
// handle evicted while an operation still uses it is closed when that operation finishes.
import { constants as fsConstants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { LRUCache } from 'lru-cache';

/** Open chunk files kept at most. */
export const OPEN_FILES_MAX = 256;

interface Entry {
  fh: FileHandle;
  refs: number;
  evicted: boolean;
}

export class FileCache {
  private readonly lru: LRUCache<number, Entry>;
  /** Opens in progress, so two callers of one chunk share one open. */
  private readonly opening = new Map<number, Promise<Entry>>();

  constructor(max = OPEN_FILES_MAX) {
    this.lru = new LRUCache<number, Entry>({
      max,
      dispose: (entry) => {
        entry.evicted = true;
        if (entry.refs === 0) this.close(entry);
      },
    });
  }

  /** Runs fn with the chunk file open read-write (created when `create`). */
  async use<T>(handle: number, path: string, create: boolean, fn: (fh: FileHandle) => Promise<T>): Promise<T> {
    const entry = await this.acquire(handle, path, create);
    try {
      return await fn(entry.fh);
    } finally {
      entry.refs--;
      if (entry.evicted && entry.refs === 0) this.close(entry);
    }
  }

  private readonly closing = new Set<Promise<void>>();

  private close(entry: Entry): void {
    const p: Promise<void> = entry.fh.close().catch(() => undefined).finally(() => this.closing.delete(p));
    this.closing.add(p);
  }

  private async acquire(handle: number, path: string, create: boolean): Promise<Entry> {
    for (;;) {
      const cached = this.lru.get(handle);
      if (cached && !cached.evicted) {
        cached.refs++;
        return cached;
      }
      const pending = this.opening.get(handle);
      if (pending) {
        await pending.catch(() => undefined);
        continue;
      }
      const flags = fsConstants.O_RDWR | (create ? fsConstants.O_CREAT : 0);
      const p = open(path, flags, 0o644).then((fh) => ({ fh, refs: 0, evicted: false }));
      this.opening.set(handle, p);
      try {
        const entry = await p;
        entry.refs++;
        this.lru.set(handle, entry);
        return entry;
      } finally {
        this.opening.delete(handle);
      }
    }
  }

  /** Closes the chunk's file (before delete); callers hold the chunk's exclusive lock. */
  forget(handle: number): void {
    this.lru.delete(handle); // dispose closes it once unused
  }

  /** Closes every file no operation is using; files in use close when their operation ends. */
  async closeAll(): Promise<void> {
    this.lru.clear();
    await Promise.all([...this.closing]);
  }
}
