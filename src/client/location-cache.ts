// Where chunks live, per file: bounded (LRU over files), time-limited (TTL per entry), and
// dropped on any failure so the next attempt asks the master again.
import { LRUCache } from 'lru-cache';
import type { ChunkInfo__Output } from '../generated/gfs/index.js';

export type ChunkInfo = ChunkInfo__Output;

/** Write leases are not used within this margin of their expiry. */
const LEASE_SAFETY_MS = 5_000;
const FILES_CACHED = 10_000;

interface Entry {
  info: ChunkInfo | null; // null = a hole: the master has no chunk at this index
  expires: number;
}

interface FileEntry {
  read: Map<number, Entry>;
  write: Map<number, Entry>;
  size: number;
  sizeExpires: number;
}

export class LocationCache {
  private readonly files = new LRUCache<number, FileEntry>({ max: FILES_CACHED });

  constructor(private readonly ttlMs: number, private readonly sizeTtlMs: number) {}

  private file(ino: number): FileEntry {
    let f = this.files.get(ino);
    if (!f) {
      f = { read: new Map(), write: new Map(), size: 0, sizeExpires: 0 };
      this.files.set(ino, f);
    }
    return f;
  }

  /** A fresh size, or undefined when it must be asked for. */
  size(ino: number): number | undefined {
    const f = this.files.get(ino);
    return f && f.sizeExpires > Date.now() ? f.size : undefined;
  }

  setSize(ino: number, size: number): void {
    const f = this.file(ino);
    f.size = size;
    f.sizeExpires = Date.now() + this.sizeTtlMs;
  }

  /** Our own write extended the file: a larger size is known without asking. */
  growSize(ino: number, end: number): void {
    const f = this.files.get(ino);
    if (f && f.sizeExpires > Date.now() && end > f.size) f.size = end;
  }

  /** undefined = unknown; null = known hole. */
  forRead(ino: number, index: number): ChunkInfo | null | undefined {
    const e = this.files.get(ino)?.read.get(index);
    // An expired entry stays as a hint (below) until a fresh answer or a failure replaces it.
    if (!e || e.expires <= Date.now()) return undefined;
    return e.info;
  }

  /**
   * Where chunk `index` was last seen, however long ago (expired entries too): a guess to try
   * in parallel with asking the master, never to trust without its confirmation.
   */
  hint(ino: number, index: number): ChunkInfo | undefined {
    return this.files.get(ino)?.read.get(index)?.info ?? undefined;
  }

  forWrite(ino: number, index: number): ChunkInfo | undefined {
    const f = this.files.get(ino);
    const e = f?.write.get(index);
    if (!e || !e.info) return undefined;
    if (e.expires <= Date.now()) {
      f!.write.delete(index);
      return undefined;
    }
    return e.info;
  }

  /** Records a master answer covering chunk indices [first, last]. */
  storeRead(ino: number, first: number, last: number, chunks: ChunkInfo[]): void {
    const f = this.file(ino);
    const expires = Date.now() + this.ttlMs;
    for (let i = first; i <= last; i++) f.read.set(i, { info: null, expires });
    for (const c of chunks) f.read.set(c.index, { info: c, expires });
  }

  storeWrite(ino: number, chunks: ChunkInfo[]): void {
    const f = this.file(ino);
    const now = Date.now();
    for (const c of chunks) {
      const leaseLeft = c.leaseExpiryMs - LEASE_SAFETY_MS;
      f.write.set(c.index, { info: c, expires: Math.min(now + this.ttlMs, leaseLeft) });
      // A chunk we write is a chunk readers of this client can find.
      f.read.set(c.index, { info: c, expires: now + this.ttlMs });
    }
  }

  invalidateChunk(ino: number, index: number): void {
    const f = this.files.get(ino);
    f?.read.delete(index);
    f?.write.delete(index);
  }

  invalidate(ino: number): void {
    this.files.delete(ino);
  }

  clear(): void {
    this.files.clear();
  }
}
