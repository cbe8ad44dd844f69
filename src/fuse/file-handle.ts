// Open files of one mount: fh -> OpenFile (flags, read-ahead, which errors it has seen) and
// ino -> FileState (write-back, size), shared by every handle of the inode in this mount. All
// I/O goes by inode number, so a renamed or unlinked file keeps working until its last release.
import { constants as fsc } from 'node:fs';
import type { Attr, GfsClientApi } from '../client/api.js';
import { GfsError } from '../common/errors.js';
import type { Logger } from '../common/logger.js';
import { BlockFill } from './block-fill.js';
import { BufferPool } from './buffer-pool.js';
import { SlabPool } from '../common/slab-pool.js';
import { ReadAhead, type ReadAheadBudget } from './read-ahead.js';
import { EXTENT_BYTES, FileState } from './write-back.js';

const O_ACCMODE = 3;

export interface FileTableOptions {
  writeBackBytesPerFile: number;
  writeBackBytesTotal: number;
  readAheadBytes: number;
  /** Read-ahead memory of the whole mount. */
  readAheadBytesTotal: number;
  /** Puts data into the kernel's page cache (resolves 0 or -errno); absent: reads that are not sequential fetch only what was asked. */
  storeData?: (ino: number, offset: number, data: Buffer) => Promise<number>;
  /** The size this mount last told the kernel a file has (undefined: unknown). */
  kernelSize: (ino: number) => number | undefined;
  /** Fresh attrs from commits/truncates (the mount's attr cache). */
  onAttr?: (attr: Attr) => void;
}

export class OpenFile {
  /** Errors of background flushes up to this sequence number were reported to this handle. */
  seenErrorSeq: number;
  readonly append: boolean;
  readonly writable: boolean;
  readonly readable: boolean;

  constructor(
    readonly fh: number,
    readonly state: FileState,
    readonly flags: number,
    readonly ra: ReadAhead,
  ) {
    this.seenErrorSeq = state.errorSeq;
    const acc = flags & O_ACCMODE;
    this.append = (flags & fsc.O_APPEND) !== 0;
    this.writable = acc === fsc.O_WRONLY || acc === fsc.O_RDWR;
    this.readable = acc === fsc.O_RDONLY || acc === fsc.O_RDWR;
  }

  get ino(): number {
    return this.state.ino;
  }

  /** Throws the first background-flush error this handle has not reported yet. */
  checkError(): void {
    const st = this.state;
    if (st.errorSeq !== this.seenErrorSeq) {
      this.seenErrorSeq = st.errorSeq;
      const err = st.lastError;
      throw err instanceof GfsError ? err : new GfsError('EIO', `write-back failed: ${(err as Error)?.message ?? String(err)}`);
    }
  }
}

export class FileTable {
  readonly pool: BufferPool;
  readonly fills: BlockFill;
  private readonly handles = new Map<number, OpenFile>();
  private readonly states = new Map<number, FileState>();
  private readonly raBudget: ReadAheadBudget;
  /** Recycled read-ahead buffers. */
  private readonly raPool: SlabPool;
  /** Release calls to the master still under way (close() does not wait for them). */
  private readonly releasing = new Set<Promise<void>>();
  private nextFh = 1;
  private idleTimer: NodeJS.Timeout;

  constructor(
    private readonly client: GfsClientApi,
    private readonly log: Logger,
    private readonly opts: FileTableOptions,
  ) {
    const keepIdle = Math.max(2, Math.floor(opts.writeBackBytesPerFile / EXTENT_BYTES));
    this.pool = new BufferPool(EXTENT_BYTES, opts.writeBackBytesTotal, keepIdle, () => this.evict());
    this.raBudget = { used: 0, limit: opts.readAheadBytesTotal };
    this.fills = new BlockFill({
      fetch: (ino, off, len) => client.read(ino, off, len),
      store: opts.storeData,
      // Not while this mount writes the file: a write updates the cached pages itself.
      fillLimit: (ino) => ((this.states.get(ino)?.writers ?? 0) > 0 ? undefined : opts.kernelSize(ino)),
      log,
    });
    this.raPool = new SlabPool(opts.readAheadBytesTotal);
    this.idleTimer = setInterval(() => this.flushIdle(), 1000);
    this.idleTimer.unref();
  }

  get openCount(): number {
    return this.handles.size;
  }

  /** Registers a handle for an inode the master just opened for us. */
  open(attr: Attr, flags: number): OpenFile {
    let st = this.states.get(attr.ino);
    if (!st) {
      st = new FileState(attr.ino, attr.size, {
        client: this.client,
        pool: this.pool,
        log: this.log,
        perFileBytes: this.opts.writeBackBytesPerFile,
        onAttr: this.opts.onAttr,
        onDataChange: (ino) => this.fills.invalidate(ino),
      });
      this.states.set(attr.ino, st);
    } else {
      st.committed(attr);
    }
    st.handles++;
    let fh = this.nextFh;
    while (this.handles.has(fh) || fh === 0) fh = fh >= 0x7fffffff ? 1 : fh + 1;
    this.nextFh = fh >= 0x7fffffff ? 1 : fh + 1;
    const ino = attr.ino;
    // O_DIRECT asked for no caching: its reads fill nothing.
    const random = (flags & fsc.O_DIRECT) !== 0 ? (off: number, len: number) => this.client.read(ino, off, len) : (off: number, len: number) => this.fills.read(ino, off, len);
    const of = new OpenFile(fh, st, flags, new ReadAhead(this.client, ino, random, this.opts.readAheadBytes, this.raBudget, this.raPool));
    if (of.writable) st.writers++;
    this.handles.set(fh, of);
    return of;
  }

  get(fh: number): OpenFile {
    const of = this.handles.get(fh);
    if (!of) throw new GfsError('EBADF', `no open file with handle ${fh}`);
    return of;
  }

  /** The shared state of an inode open in this mount, if any. */
  stateOf(ino: number): FileState | undefined {
    return this.states.get(ino);
  }

  /**
   * Last step of a handle: land its data, drop it, and release it on the master (opens are
   * counted per handle there; the last release of an unlinked file frees it). Errors are
   * logged: the kernel ignores release's answer (close() got flush's). The master's release
   * is not waited for: the client batches releases (release-batcher.ts), and unmount waits
   * for them with releasesDone().
   */
  async release(fh: number): Promise<void> {
    const of = this.handles.get(fh);
    if (!of) return;
    this.handles.delete(fh);
    of.ra.dropAll();
    const st = of.state;
    try {
      await st.flushAll();
      of.checkError();
    } catch (err) {
      this.log.warn({ ino: st.ino, fh, err: (err as Error)?.message ?? String(err) }, 'data lost at release');
    }
    st.handles--;
    if (of.writable) st.writers--;
    if (st.handles === 0 && this.states.get(st.ino) === st) this.states.delete(st.ino);
    const p: Promise<void> = this.client
      .release(st.ino)
      .catch((err: unknown) => this.log.warn({ ino: st.ino, err: (err as Error)?.message ?? String(err) }, 'release failed'))
      .finally(() => this.releasing.delete(p));
    this.releasing.add(p);
  }

  /** Waits for the master to have every release made so far (unmount). */
  async releasesDone(): Promise<void> {
    await Promise.allSettled([...this.releasing]);
  }

  /** Lands everything buffered in every open file (unmount). Returns the number that failed. */
  async flushEverything(): Promise<number> {
    const results = await Promise.allSettled([...this.states.values()].map((st) => st.flushAll()));
    return results.filter((r) => r.status === 'rejected').length;
  }

  /** Releases every handle still open (unmount after a forced detach). */
  async releaseAll(): Promise<void> {
    await Promise.allSettled([...this.handles.keys()].map((fh) => this.release(fh)));
  }

  close(): void {
    clearInterval(this.idleTimer);
    this.pool.trim(0);
  }

  /** Memory pressure: send the oldest buffered extents of any file. */
  private evict(): void {
    let victims = Math.max(1, this.pool.waiting);
    while (victims-- > 0) {
      let best: FileState | undefined;
      let bestTime = Infinity;
      for (const st of this.states.values()) {
        const t = st.oldestOpenTime();
        if (t < bestTime) {
          bestTime = t;
          best = st;
        }
      }
      const ext = best?.oldestOpen();
      if (!best || !ext) return;
      best.startFlush(ext);
    }
  }

  private flushIdle(): void {
    const now = Date.now();
    for (const st of this.states.values()) st.flushIdle(now);
    if (this.states.size === 0) this.pool.trim(0);
  }
}
