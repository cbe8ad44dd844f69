// Write-back for one inode in this mount (shared by all its open handles, so two handles see
// each other's data and a read can make pending writes land first). Writes are copied into
// extent buffers aligned to EXTENT_BYTES (a divisor of the chunk size); a full extent, or one
// the writer has moved past, is sent in the background with client.writeData, extents in
// parallel. flushAll() commits the size (client.commitWrite) beside the data still travelling
// and waits for both, so close/fsync return only when the data is on every replica and the
// master has the size. The two legs run at once, as GFS lets a region be undefined while a
// mutation is under way: a reader of another client may see the new size a moment before the
// bytes, and a failed write leaves its region undefined and is reported to the writer.
// Memory: bounded per file (await our own flushes) and per mount (BufferPool). Errors of
// background flushes are kept with a sequence number and reported by the next
// write/flush/fsync/close of every handle that has not seen them yet.
// chmod/chown/utimens of the file while it has writes pending are folded into the commit
// (foldAttrs): `tar -x` sets times, owner and mode of every file before closing it, and each
// would otherwise be a master round trip of its own. This mount shows them at once (overlay);
// other clients see them with the data, at close.
import type { Attr, Cred, GfsClientApi, SetAttrChanges } from '../client/api.js';
import { GfsError } from '../common/errors.js';
import type { Logger } from '../common/logger.js';
import type { BufferPool } from './buffer-pool.js';

/** Extent size: 16 MiB, the client's write piece size, a divisor of any power-of-two chunk size >= it. */
export const EXTENT_BYTES = 16 * 1024 * 1024;
/** First buffer of a file's extent 0 when the write is small: small files cost little memory. */
const SMALL_BYTES = 256 * 1024;
/** Buffered data older than this is sent even if the file stays open (idle writers). */
export const IDLE_FLUSH_MS = 3000;

interface Extent {
  index: number;
  buf: Buffer;
  /** Dirty ranges inside the extent, sorted and disjoint: [s0, e0, s1, e1, ...]. */
  ranges: number[];
  touched: number;
}

export interface WriteBackEnv {
  client: GfsClientApi;
  pool: BufferPool;
  log: Logger;
  perFileBytes: number;
  /** Told every attr the master answers a commit or truncate with (keeps caches current). */
  onAttr?: (attr: Attr) => void;
  /** Told when data changes here (a write or truncate): copies of the old data are stale. */
  onDataChange?: (ino: number) => void;
}

/** Attribute changes waiting for the next commit, with the cred they were made with. */
export interface PendingAttrs {
  changes: SetAttrChanges;
  cred: Cred;
  /** Date.now() of the last change folded (its ctime, and the time of a 'now'). */
  at: number;
}

export class FileState {
  /** Logical size as this mount knows it, including buffered writes. */
  size: number;
  /** chmod/chown/utimens folded into the next commit. */
  pendingAttrs: PendingAttrs | undefined;
  /** Bumped on every change of the data (read-ahead drops what it fetched before). */
  gen = 0;
  /** Open handles in this mount, and how many of them can write. */
  handles = 0;
  writers = 0;
  /** Background-flush failures: handles report each one once (like the kernel's errseq). */
  errorSeq = 0;
  lastError: unknown;

  private readonly open = new Map<number, Extent>();
  /** Per extent index, the tail of its flush chain (a newer flush of an index waits for the older). */
  private readonly inflight = new Map<number, Promise<void>>();
  private bytes = 0;
  /** End of the furthest data handed to a send (what the next commit records as the size). */
  private sentEnd = 0;
  /** Sends started, and how many of them the master's size covers (commits record sentEnd). */
  private sendSeq = 0;
  private committedSeq = 0;
  private commitChain: Promise<void> = Promise.resolve();

  constructor(
    readonly ino: number,
    size: number,
    private readonly env: WriteBackEnv,
  ) {
    this.size = size;
  }

  /** True while anything written here is not yet committed on the master. */
  get dirty(): boolean {
    return this.open.size > 0 || this.inflight.size > 0 || this.sendSeq !== this.committedSeq || this.pendingAttrs !== undefined;
  }

  /**
   * Folds an attribute change into the next commit, if writes are pending and the change is
   * made with the same cred as the ones already folded; false otherwise (the caller then lands
   * what is pending and changes the attributes on the master itself, keeping the order).
   */
  foldAttrs(changes: SetAttrChanges, cred: Cred): boolean {
    if (!this.dirty || changes.size !== undefined) return false;
    const p = this.pendingAttrs;
    if (p && (p.cred.uid !== cred.uid || p.cred.gid !== cred.gid)) return false;
    const into = p?.changes ?? {};
    for (const k of ['mode', 'uid', 'gid', 'atime', 'mtime'] as const) {
      if (changes[k] !== undefined) (into as Record<string, unknown>)[k] = changes[k];
    }
    this.pendingAttrs = { changes: into, cred, at: Date.now() };
    return true;
  }

  get bufferedBytes(): number {
    return this.bytes;
  }

  /**
   * Buffers `data` at `pos`. Copies synchronously when memory is available; otherwise copies
   * the caller's buffer first (fuse-native's buffer is only valid until we answer) and waits.
   */
  async write(data: Buffer, pos: number): Promise<void> {
    const end = pos + data.length;
    this.changed();
    if (end > this.size) this.size = end;
    let src = data;
    let copied = false;
    let off = 0;
    while (off < src.length) {
      const abs = pos + off;
      const index = Math.floor(abs / EXTENT_BYTES);
      const inExt = abs - index * EXTENT_BYTES;
      const n = Math.min(src.length - off, EXTENT_BYTES - inExt);
      let ext = this.open.get(index);
      if (!ext || ext.buf.length < inExt + n) {
        ext = this.extentNow(index, inExt + n, ext);
        if (!ext) {
          if (!copied) {
            src = Buffer.from(src); // detach from the kernel's buffer before awaiting
            copied = true;
          }
          ext = await this.extentLater(index, inExt + n);
          this.changed();
        }
      }
      src.copy(ext.buf, inExt, off, off + n);
      addRange(ext.ranges, inExt, inExt + n);
      ext.touched = Date.now();
      if (ext.ranges.length === 2 && ext.ranges[0] === 0 && ext.ranges[1] === EXTENT_BYTES) this.startFlush(ext);
      off += n;
    }
    // A sequential writer that moved on will not come back: send the extents behind it.
    const cur = Math.floor((end - 1) / EXTENT_BYTES);
    for (const e of this.open.values()) {
      if (e.index < cur && e.ranges[e.ranges.length - 1] === EXTENT_BYTES) this.startFlush(e);
    }
  }

  /** An extent of index with capacity >= need, without waiting; undefined if memory is short. */
  private extentNow(index: number, need: number, existing: Extent | undefined): Extent | undefined {
    const { pool, perFileBytes } = this.env;
    const want = index === 0 && need <= SMALL_BYTES && !existing ? SMALL_BYTES : pool.extentBytes;
    const growBy = want - (existing?.buf.length ?? 0);
    if (this.bytes + growBy > perFileBytes) return undefined;
    const buf = pool.tryAcquire(want);
    if (!buf) return undefined;
    return this.install(index, buf, existing);
  }

  private async extentLater(index: number, need: number): Promise<Extent> {
    const { pool, perFileBytes } = this.env;
    for (;;) {
      const existing = this.open.get(index);
      if (existing && existing.buf.length >= need) return existing;
      const want = pool.extentBytes;
      const growBy = want - (existing?.buf.length ?? 0);
      if (this.bytes + growBy > perFileBytes) {
        // Over this file's bound: send our oldest open extent (not the one being written) and
        // wait for some flush of ours to finish.
        const victim = this.oldestOpen(index);
        if (victim) this.startFlush(victim);
        if (this.inflight.size > 0) await Promise.race(this.inflight.values());
        else if (!victim) break; // nothing of ours to wait for: take the memory anyway
        continue;
      }
      break;
    }
    const buf = await pool.acquire(pool.extentBytes);
    const existing = this.open.get(index);
    if (existing && existing.buf.length >= need) {
      pool.release(buf); // someone grew it while we waited
      return existing;
    }
    return this.install(index, buf, existing);
  }

  private install(index: number, buf: Buffer, existing: Extent | undefined): Extent {
    this.bytes += buf.length;
    if (existing) {
      existing.buf.copy(buf, 0, 0, existing.buf.length);
      this.bytes -= existing.buf.length;
      this.env.pool.release(existing.buf);
      existing.buf = buf;
      return existing;
    }
    const ext: Extent = { index, buf, ranges: [], touched: Date.now() };
    this.open.set(index, ext);
    return ext;
  }

  /** Oldest open extent (other than `except`), for eviction under memory pressure. */
  oldestOpen(except = -1): Extent | undefined {
    let best: Extent | undefined;
    for (const e of this.open.values()) {
      if (e.index === except) continue;
      if (!best || e.touched < best.touched) best = e;
    }
    return best;
  }

  oldestOpenTime(): number {
    return this.oldestOpen()?.touched ?? Infinity;
  }

  /** Sends one extent in the background (after any older flush of the same index). */
  startFlush(ext: Extent): void {
    if (this.open.get(ext.index) !== ext) return;
    this.open.delete(ext.index);
    const r = ext.ranges;
    if (r.length > 0) this.sentEnd = Math.max(this.sentEnd, ext.index * EXTENT_BYTES + r[r.length - 1]!);
    this.sendSeq++;
    const prev = this.inflight.get(ext.index);
    const p: Promise<void> = (prev ? prev.then(() => this.send(ext)) : this.send(ext)).finally(() => {
      if (this.inflight.get(ext.index) === p) this.inflight.delete(ext.index);
    });
    this.inflight.set(ext.index, p);
  }

  /** Writes an extent's dirty ranges to the replicas; never rejects (errors are recorded). */
  private async send(ext: Extent): Promise<void> {
    const base = ext.index * EXTENT_BYTES;
    const r = ext.ranges;
    try {
      const parts: Promise<void>[] = [];
      for (let i = 0; i < r.length; i += 2) {
        parts.push(this.env.client.writeData(this.ino, base + r[i]!, ext.buf.subarray(r[i]!, r[i + 1]!)));
      }
      await Promise.all(parts);
    } catch (err) {
      this.fail(err, { offset: base, ranges: r.length / 2 });
    } finally {
      this.bytes -= ext.buf.length;
      this.env.pool.release(ext.buf);
    }
  }

  private fail(err: unknown, detail: Record<string, unknown>): void {
    this.errorSeq++;
    this.lastError = err;
    this.env.log.warn({ ino: this.ino, ...detail, err: (err as Error)?.message ?? String(err) }, 'write-back failed');
  }

  /**
   * Starts sending everything buffered, without waiting (a file whose attributes are being set
   * is done being written, as tar and cp -p do before close: the data travels meanwhile).
   */
  landSoon(): void {
    for (const e of [...this.open.values()]) this.startFlush(e);
  }

  /**
   * Everything buffered so far is on every replica and the size is committed. The commit does
   * not wait for the data (see the top of this file): close costs one round trip, not two.
   */
  async flushAll(): Promise<void> {
    for (const e of [...this.open.values()]) this.startFlush(e);
    if (this.inflight.size > 0) await Promise.all([...this.inflight.values(), this.commit()]);
    else await this.commit();
  }

  /** Records the size of everything sent on the master (mtime too); serialised so commits do not cross. */
  commit(): Promise<void> {
    const run = async (): Promise<void> => {
      const seq = this.sendSeq;
      const sent = seq !== this.committedSeq;
      if (!sent && !this.pendingAttrs) return;
      const attrs = this.pendingAttrs;
      this.pendingAttrs = undefined;
      try {
        // Attributes alone (the buffered data was cut away meanwhile): no size, no new mtime.
        const attr = sent
          ? await this.env.client.commitWrite(this.ino, this.sentEnd, attrs && { changes: attrs.changes, cred: attrs.cred })
          : await this.env.client.setattr(this.ino, attrs!.changes, attrs!.cred);
        if (seq > this.committedSeq) this.committedSeq = seq;
        this.committed(attr);
        this.env.onAttr?.(attr);
      } catch (err) {
        // A change the master refuses (EPERM...) is reported once, not retried forever.
        const refused = err instanceof GfsError && !err.retryable;
        if (attrs && !refused) this.pendingAttrs ??= attrs;
        throw err;
      }
    };
    const p = this.commitChain.then(run, run);
    this.commitChain = p.catch(() => undefined);
    return p;
  }

  private changed(): void {
    this.gen++;
    this.env.onDataChange?.(this.ino);
  }

  /** Learns the master's view of the file (open, commit, getattr when nothing is pending). */
  committed(attr: Attr): void {
    if (!this.dirty) this.size = attr.size;
    else if (attr.size > this.size) this.size = attr.size;
  }

  /**
   * Truncate coherently: drop buffered data past `size`, land and commit the rest, then let
   * `apply` truncate on the master. Data buffered before the call never reappears after it.
   */
  async truncate(size: number, apply: () => Promise<Attr>): Promise<Attr> {
    this.changed();
    for (const e of [...this.open.values()]) {
      const base = e.index * EXTENT_BYTES;
      if (base >= size) {
        this.open.delete(e.index);
        this.bytes -= e.buf.length;
        this.env.pool.release(e.buf);
      } else if (base + e.buf.length > size) {
        clipRanges(e.ranges, size - base);
        if (e.ranges.length === 0) {
          this.open.delete(e.index);
          this.bytes -= e.buf.length;
          this.env.pool.release(e.buf);
        }
      }
    }
    await this.flushAll();
    const attr = await apply();
    this.env.onAttr?.(attr);
    this.changed();
    this.sentEnd = Math.min(this.sentEnd, size);
    this.size = size;
    this.committed(attr);
    return attr;
  }

  /** Idle timer: send data that sat buffered too long, and commit what was sent. */
  flushIdle(now: number): void {
    for (const e of [...this.open.values()]) if (now - e.touched >= IDLE_FLUSH_MS) this.startFlush(e);
    if (this.open.size === 0 && this.inflight.size === 0 && (this.sendSeq !== this.committedSeq || this.pendingAttrs)) {
      this.commit().catch((err) => this.fail(err, { op: 'commit' }));
    }
  }

  /** Drops everything buffered (the inode is gone); waits for flushes in flight. */
  async discard(): Promise<void> {
    for (const e of [...this.open.values()]) {
      this.open.delete(e.index);
      this.bytes -= e.buf.length;
      this.env.pool.release(e.buf);
    }
    if (this.inflight.size > 0) await Promise.all([...this.inflight.values()]);
  }
}

/** Adds [s, e) to a sorted disjoint flat range list, merging neighbours. */
export function addRange(r: number[], s: number, e: number): void {
  const n = r.length;
  // Fast paths for sequential writers: after the last range, or extending it.
  if (n === 0 || s > r[n - 1]!) {
    r.push(s, e);
    return;
  }
  if (s >= r[n - 2]!) {
    if (e > r[n - 1]!) r[n - 1] = e;
    return;
  }
  const out: number[] = [];
  let placed = false;
  for (let i = 0; i < r.length; i += 2) {
    const a = r[i]!;
    const b = r[i + 1]!;
    if (b < s) out.push(a, b);
    else if (a > e) {
      if (!placed) {
        out.push(s, e);
        placed = true;
      }
      out.push(a, b);
    } else {
      s = Math.min(s, a);
      e = Math.max(e, b);
    }
  }
  if (!placed) out.push(s, e);
  r.length = 0;
  for (const x of out) r.push(x);
}

/** Cuts a range list at `limit`. */
export function clipRanges(r: number[], limit: number): void {
  const out: number[] = [];
  for (let i = 0; i < r.length; i += 2) {
    if (r[i]! >= limit) break;
    out.push(r[i]!, Math.min(r[i + 1]!, limit));
  }
  r.length = 0;
  for (const x of out) r.push(x);
}
