// Reads that are not sequential. The kernel asks for exactly the pages it missed (4 KiB for a
// random reader that said so with fadvise), and each miss would cost a chunkserver round trip
// for 4 KiB. A round trip costs far more than the 60 KiB more it could carry, so we fetch the
// aligned 64 KiB block around the miss, answer the read from it, and hand the rest of it to the
// kernel's page cache (FUSE_NOTIFY_STORE): the next misses in the block never reach us. The mount keeps
// no copy; the page cache holds the data and gives it back under memory pressure.
//
// The kernel's page cache must never get data older than what this mount wrote, nor extend a
// file past its size:
//  - no fill while a handle of the file is open for writing here (a write updates the cached
//    page itself, and a fill fetched before it would overwrite it); an open waits for the
//    fills of its file still under way, so a write can never race one;
//  - a write or truncate here drops the fetches under way (they answer their reader, which
//    raced the change anyway, but fill nothing), and truncate waits for fills like an open;
//  - a fill never goes past the size this mount last told the kernel.
import type { Logger } from '../common/logger.js';

export const BLOCK_BYTES = 64 * 1024;
const PAGE_BYTES = 4096;
/** Reads spanning more blocks than this are not random misses: they go to the chunkservers as they are. */
const MAX_BLOCKS_PER_READ = 2;
/** An open or truncate waits at most this long for fills under way (each is one write to /dev/fuse). */
const FILL_WAIT_MS = 5_000;

export interface BlockFillEnv {
  fetch(ino: number, offset: number, length: number): Promise<Buffer>;
  /** Writes data into the kernel's page cache; resolves 0 or -errno. Absent: no fills (not mounted). */
  store?(ino: number, offset: number, data: Buffer): Promise<number>;
  /** Whether the kernel's pages of ino may be filled now, and up to which size. */
  fillLimit(ino: number): number | undefined;
  log: Logger;
}

export class BlockFill {
  private readonly fetching = new Map<string, Promise<Buffer>>();
  /** ino -> seq of its last invalidation, kept only while fetches are under way. */
  private readonly droppedAt = new Map<number, number>();
  private seq = 0;
  /** Fetches not settled yet, including ones an invalidation took out of `fetching`. */
  private inFlight = 0;
  private readonly filling = new Map<number, Set<Promise<unknown>>>();
  fetches = 0;
  filledBytes = 0;
  fillErrors = 0;

  constructor(private readonly env: BlockFillEnv) {}

  /** Up to `len` bytes at `off` of file `ino` (short only at its end). */
  async read(ino: number, off: number, len: number): Promise<Buffer> {
    const first = Math.floor(off / BLOCK_BYTES);
    const last = Math.floor((off + Math.max(1, len) - 1) / BLOCK_BYTES);
    if (!this.env.store || last - first >= MAX_BLOCKS_PER_READ) return this.env.fetch(ino, off, len);
    const got = await Promise.all(Array.from({ length: last - first + 1 }, (_, i) => this.block(ino, first + i, off, len)));
    const parts: Buffer[] = [];
    let pos = off;
    const end = off + len;
    for (let i = 0; i < got.length && pos < end; i++) {
      const base = (first + i) * BLOCK_BYTES;
      const b = got[i]!;
      if (pos - base >= b.length) break; // end of file
      const to = Math.min(b.length, end - base);
      parts.push(b.subarray(pos - base, to));
      pos = base + to;
      if (b.length < BLOCK_BYTES) break;
    }
    if (parts.length === 0) return Buffer.alloc(0);
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  }

  /** The file's data changed here: fetches under way fill nothing. */
  invalidate(ino: number): void {
    if (this.inFlight === 0) return;
    this.droppedAt.set(ino, ++this.seq);
    const prefix = `${ino}:`;
    for (const key of [...this.fetching.keys()]) if (key.startsWith(prefix)) this.fetching.delete(key);
  }

  /**
   * The file's data changes here now (a truncate, zeros over a range): fills fetched before
   * fill nothing, and those already writing into the kernel's pages are over.
   */
  async discard(ino: number): Promise<void> {
    this.invalidate(ino);
    await this.idle(ino);
  }

  /** Resolves once no fill of `ino` is under way (bounded by FILL_WAIT_MS). */
  async idle(ino: number): Promise<void> {
    const set = this.filling.get(ino);
    if (!set) return;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        this.env.log.warn({ ino, fills: set.size }, 'page cache fills still under way');
        resolve();
      }, FILL_WAIT_MS);
    });
    await Promise.race([Promise.allSettled([...set]), late]);
    clearTimeout(timer);
  }

  /** Every fill under way (unmount: a worker must not write to the device after it). */
  async allIdle(): Promise<void> {
    await Promise.all([...this.filling.keys()].map((ino) => this.idle(ino)));
  }

  private block(ino: number, i: number, off: number, len: number): Promise<Buffer> {
    const key = `${ino}:${i}`;
    const pending = this.fetching.get(key);
    if (pending) return pending;
    const startedAt = this.seq;
    this.inFlight++;
    this.fetches++;
    const p = this.env.fetch(ino, i * BLOCK_BYTES, BLOCK_BYTES).then(
      (data) => {
        if ((this.droppedAt.get(ino) ?? -1) <= startedAt) this.fill(ino, i * BLOCK_BYTES, data, off, off + len);
        this.done(key, p);
        return data;
      },
      (err: unknown) => {
        this.done(key, p);
        throw err;
      },
    );
    this.fetching.set(key, p);
    return p;
  }

  private done(key: string, p: Promise<Buffer>): void {
    if (this.fetching.get(key) === p) this.fetching.delete(key);
    if (--this.inFlight === 0) this.droppedAt.clear();
  }

  /** Gives the kernel the pages of the block around the ones being read (those it gets as the answer). */
  private fill(ino: number, base: number, data: Buffer, readFrom: number, readTo: number): void {
    const limit = this.env.fillLimit(ino);
    if (limit === undefined) return;
    const end = Math.min(base + data.length, limit);
    const lo = Math.max(base, Math.floor(readFrom / PAGE_BYTES) * PAGE_BYTES);
    const hi = Math.min(end, Math.ceil(readTo / PAGE_BYTES) * PAGE_BYTES);
    if (lo > base) this.storeRange(ino, base, data.subarray(0, Math.min(lo, end) - base));
    if (hi < end) this.storeRange(ino, Math.max(hi, base), data.subarray(Math.max(hi, base) - base, end - base));
  }

  private storeRange(ino: number, at: number, data: Buffer): void {
    if (data.length === 0) return;
    let set = this.filling.get(ino);
    if (!set) {
      set = new Set();
      this.filling.set(ino, set);
    }
    const s = set;
    const p = this.env.store!(ino, at, data).then((r) => {
      if (r === 0) this.filledBytes += data.length;
      else if (this.fillErrors++ === 0) this.env.log.warn({ ino, offset: at, errno: -r }, 'page cache fill refused');
      s.delete(p);
      if (s.size === 0 && this.filling.get(ino) === s) this.filling.delete(ino);
    });
    s.add(p);
  }
}
