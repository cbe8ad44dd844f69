// The operation log: every mutation record is appended to the current log segment before its
// caller is answered, and made durable (fdatasync) either before the answer (group and each
// mode) or right behind it (background mode, see SyncMode). Concurrent mutations share writes
// and fsyncs (group commit): while one write or fdatasync runs, new records collect in memory
// and the next one covers them all.
//
// On-disk format of a segment `oplog-<seq, 20 digits>.log` (all integers little-endian):
//   header (32 bytes): magic "GFSOPLOG" | u32 format (1) | u32 0 | u64 seq | u32 crc32(bytes 0..23) | u32 0
//   records:           u32 len | u32 crc32(len bytes ++ payload) | payload (len bytes, UTF-8 JSON Mutation)
// A record is valid when its length is sane, it fits in the file, and its CRC matches.
import * as fs from 'node:fs';
import { join } from 'node:path';
import { GfsError } from '../common/errors.js';
import type { Logger } from '../common/logger.js';
import { crc32 } from '../common/crc32.js';
import { syncPath } from '../common/sync-path.js';

export const LOG_MAGIC = 'GFSOPLOG';
export const LOG_FORMAT = 1;
export const LOG_HEADER_BYTES = 32;
export const RECORD_HEADER_BYTES = 8;
/** Largest record payload accepted (a record is one mutation: names, an xattr value). */
export const MAX_RECORD_BYTES = 16 * 1024 * 1024;

/**
 * When a reply may go out: 'group' after the fdatasync covering its record (concurrent records
 * share one), 'each' after a fdatasync of its own, 'background' once the record is written to
 * the log file (it survives a crash of the master process) while fdatasyncs run back to back
 * behind the writes; a client's fsync waits for them (durable()).
 */
export type SyncMode = 'group' | 'each' | 'background';
export const SYNC_MODES: readonly SyncMode[] = ['background', 'group', 'each'];

// ----------------------------------------------------------------------------- naming

const SEQ_DIGITS = 20;
export const segmentName = (seq: number) => `oplog-${String(seq).padStart(SEQ_DIGITS, '0')}.log`;
export const SEGMENT_RE = /^oplog-(\d{20})\.log$/;

// ---------------------------------------------------------------------------- framing

export function encodeHeader(seq: number): Buffer {
  const h = Buffer.alloc(LOG_HEADER_BYTES);
  h.write(LOG_MAGIC, 0, 'latin1');
  h.writeUInt32LE(LOG_FORMAT, 8);
  h.writeBigUInt64LE(BigInt(seq), 16);
  h.writeUInt32LE(crc32(h.subarray(0, 24)), 24);
  return h;
}

/** The segment's seq, or a reason why the header is not valid. */
export function decodeHeader(buf: Buffer): { seq: number } | { error: string } {
  if (buf.length < LOG_HEADER_BYTES) return { error: `header is short (${buf.length} of ${LOG_HEADER_BYTES} bytes)` };
  if (buf.toString('latin1', 0, 8) !== LOG_MAGIC) return { error: 'bad magic (not a gfs operation log)' };
  if (crc32(buf.subarray(0, 24)) !== buf.readUInt32LE(24)) return { error: 'header checksum mismatch' };
  const format = buf.readUInt32LE(8);
  if (format !== LOG_FORMAT) return { error: `unsupported log format ${format} (this master reads ${LOG_FORMAT})` };
  return { seq: Number(buf.readBigUInt64LE(16)) };
}

export function encodeRecord(payload: Buffer): Buffer {
  if (payload.length > MAX_RECORD_BYTES) throw new GfsError('E2BIG', `log record of ${payload.length} bytes is too large`);
  const out = Buffer.allocUnsafe(RECORD_HEADER_BYTES + payload.length);
  out.writeUInt32LE(payload.length, 0);
  payload.copy(out, RECORD_HEADER_BYTES);
  out.writeUInt32LE(crc32(out.subarray(RECORD_HEADER_BYTES), crc32(out.subarray(0, 4))), 4);
  return out;
}

/** Length of the valid record at `off`, or 0 when there is none. */
function validRecordAt(buf: Buffer, off: number): number {
  if (off + RECORD_HEADER_BYTES > buf.length) return 0;
  const len = buf.readUInt32LE(off);
  if (len < 2 || len > MAX_RECORD_BYTES || off + RECORD_HEADER_BYTES + len > buf.length) return 0;
  const crc = crc32(buf.subarray(off + RECORD_HEADER_BYTES, off + RECORD_HEADER_BYTES + len), crc32(buf.subarray(off, off + 4)));
  return crc === buf.readUInt32LE(off + 4) ? RECORD_HEADER_BYTES + len : 0;
}

export interface ScannedRecord {
  offset: number;
  payload: Buffer;
}

export interface ScanResult {
  records: ScannedRecord[];
  /** End of the last good record: the file's valid length. */
  goodEnd: number;
  /** The bytes after goodEnd hold no complete valid record: a torn write. */
  torn: boolean;
  /** A bad record with a good record after it: damage, not a torn write. */
  damagedAt?: number;
}

/**
 * Splits a segment (header included) into records. A bad record followed by nothing valid is
 * a torn tail; a bad record followed by a valid one is damage (`damagedAt`).
 */
export function scanRecords(buf: Buffer): ScanResult {
  const records: ScannedRecord[] = [];
  let off = LOG_HEADER_BYTES;
  while (off < buf.length) {
    const n = validRecordAt(buf, off);
    if (n) {
      records.push({ offset: off, payload: buf.subarray(off + RECORD_HEADER_BYTES, off + n) });
      off += n;
      continue;
    }
    for (let p = off + 1; p + RECORD_HEADER_BYTES < buf.length; p++) {
      if (validRecordAt(buf, p)) return { records, goodEnd: off, torn: false, damagedAt: off };
    }
    return { records, goodEnd: off, torn: true };
  }
  return { records, goodEnd: off, torn: false };
}

// ----------------------------------------------------------------------------- writer

/** The two calls on the commit path, replaceable to count them or inject failures. */
export interface LogIo {
  /** Bytes written; may answer at once (a number) or later (a promise). */
  write(fd: number, buf: Buffer, position: number): number | Promise<number>;
  fdatasync(fd: number): Promise<void>;
}

export const nodeLogIo: LogIo = {
  // Synchronous: appending a batch of records to the page cache takes ~5 us here, while the
  // thread-pool round trip of an async write cost 60-90 us on every mutation's reply path
  // (more with the background fdatasync running). fdatasync stays async: it waits for the disk.
  write: (fd, buf, position) => fs.writeSync(fd, buf, 0, buf.length, position),
  fdatasync: (fd) => new Promise((res, rej) => fs.fdatasync(fd, (err) => (err ? rej(err) : res()))),
};

/** Creates segment `seq` (header only), durable name included. Fails if it exists. */
export async function createSegment(dir: string, seq: number): Promise<number> {
  const path = join(dir, segmentName(seq));
  const fd = await new Promise<number>((res, rej) => fs.open(path, 'wx', 0o644, (err, fd) => (err ? rej(err) : res(fd))));
  try {
    const h = encodeHeader(seq);
    nodeLogIo.write(fd, h, 0);
    await new Promise<void>((res, rej) => fs.fsync(fd, (err) => (err ? rej(err) : res())));
    await syncPath(dir);
    return fd;
  } catch (err) {
    fs.closeSync(fd);
    throw err;
  }
}

type Item = { rec: Buffer; n: number } | { roll: number };

interface Waiter {
  upto: number;
  resolve: () => void;
  reject: (err: Error) => void;
}

export interface OpLogStats {
  records: number;
  bytes: number;
  writes: number;
  syncs: number;
  segments: number;
}

export interface OpLogOptions {
  syncMode?: SyncMode;
  io?: LogIo;
  log?: Logger;
}

/**
 * Records written but not yet fdatasynced, at most (background mode): past this, new records
 * are acknowledged only once durable, so the loss a power cut can cause stays bounded.
 */
export const UNSYNCED_RECORDS_MAX = 16_384;
/**
 * Background mode: the least time from the end of one fdatasync to the start of the next while
 * nobody waits for durability. Back to back, a busy master ran hundreds of fdatasyncs a second,
 * each a thread-pool round trip costing the loop tens of microseconds; durable() starts one at once.
 */
export const BACKGROUND_SYNC_GAP_MS = 5;

export class OpLog {
  readonly syncMode: SyncMode;
  readonly stats: OpLogStats = { records: 0, bytes: 0, writes: 0, syncs: 0, segments: 1 };
  private readonly io: LogIo;
  private readonly log: Logger | undefined;
  private queue: Item[] = [];
  private appended = 0;
  /** Records handed to write(2) and returned from it: they survive a crash of this process. */
  private writtenUpto = 0;
  /** Records covered by a finished fdatasync: they survive a power cut. */
  private synced = 0;
  private writtenWaiters: Waiter[] = [];
  private durableWaiters: Waiter[] = [];
  private flushing = false;
  /** The background fdatasync in progress (background mode). */
  private syncing: Promise<void> | undefined;
  /** The next background fdatasync, waiting out BACKGROUND_SYNC_GAP_MS. */
  private syncTimer: NodeJS.Timeout | undefined;
  private lastSyncEnd = 0;
  private rolling = false;
  private failure: GfsError | undefined;
  private pos = LOG_HEADER_BYTES;
  private closed = false;
  private idle: Array<() => void> = [];
  private readonly rollWaiters = new Map<number, { resolve: () => void; reject: (e: Error) => void; p: Promise<void> }>();
  /** Bytes of the segment new records go to (written or still queued). */
  segmentBytes = LOG_HEADER_BYTES;

  /** `fd` is an open, freshly created segment `seq` (see createSegment). */
  constructor(
    private readonly dir: string,
    public seq: number,
    private fd: number,
    opts: OpLogOptions = {},
  ) {
    this.syncMode = opts.syncMode ?? 'group';
    this.io = opts.io ?? nodeLogIo;
    this.log = opts.log;
  }

  /** The error that stopped the log (then every mutation is refused), if any. */
  get failed(): GfsError | undefined {
    return this.failure;
  }

  /** Queues one record; written() and durable() cover it from now on. */
  append(payload: Buffer): void {
    if (this.failure) throw this.failure;
    if (this.closed) throw new GfsError('EIO', 'operation log is closed');
    const rec = encodeRecord(payload);
    this.queue.push({ rec, n: ++this.appended });
    this.segmentBytes += rec.length;
    this.schedule();
  }

  /** Records appended from now on go to a new segment `seq`; resolves once it exists. */
  roll(seq: number): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    let resolve!: () => void;
    let reject!: (e: Error) => void;
    const p = new Promise<void>((res, rej) => ((resolve = res), (reject = rej)));
    p.catch(() => undefined);
    this.rollWaiters.set(seq, { resolve, reject, p });
    this.queue.push({ roll: seq });
    this.segmentBytes = LOG_HEADER_BYTES;
    this.schedule();
    return p;
  }

  /** Resolves when every record appended so far is on disk; rejects with EIO if it never will be. */
  durable(): Promise<void> {
    const p = this.waitFor(this.synced, this.durableWaiters);
    if (this.syncMode === 'background') this.kickSync();
    return p;
  }

  /**
   * Resolves when every record appended so far has been written to the log file (it survives
   * a crash of this process); in group and each mode that is when it is durable.
   */
  written(): Promise<void> {
    return this.waitFor(this.writtenUpto, this.writtenWaiters);
  }

  /**
   * What a reply waits for: durable() in group and each mode; written() in background mode,
   * unless more than UNSYNCED_RECORDS_MAX records wait for their fdatasync.
   */
  committed(): Promise<void> {
    if (this.syncMode !== 'background' || this.appended - this.synced > UNSYNCED_RECORDS_MAX) return this.durable();
    return this.written();
  }

  private waitFor(reached: number, list: Waiter[]): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (reached >= this.appended) return Promise.resolve();
    return new Promise((resolve, reject) => list.push({ upto: this.appended, resolve, reject }));
  }

  /** Writes and syncs what is queued, then closes the segment. Idempotent. */
  async close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      if (this.flushing || this.queue.length) await new Promise<void>((r) => this.idle.push(r));
      if (!this.failure) await this.syncAll().catch((err: Error) => this.fail(err));
      if (this.syncTimer) clearTimeout(this.syncTimer);
      this.syncTimer = undefined;
      await new Promise<void>((res) => fs.close(this.fd, () => res()));
    }
  }

  private schedule(): void {
    if (this.flushing || this.failure) return;
    this.flushing = true;
    // setImmediate: every request handled in this turn of the event loop joins the batch.
    setImmediate(() => void this.flushLoop());
  }

  private async flushLoop(): Promise<void> {
    try {
      while (this.queue.length && !this.failure) {
        let items: Item[];
        if (this.syncMode === 'each') {
          const i = this.queue.findIndex((x) => 'rec' in x);
          items = this.queue.splice(0, i < 0 ? this.queue.length : i + 1);
        } else {
          items = this.queue;
          this.queue = [];
        }
        let upto = this.writtenUpto;
        let bufs: Buffer[] = [];
        for (const item of items) {
          if ('roll' in item) {
            if (bufs.length) await this.writeOut(bufs, upto);
            bufs = [];
            // The old segment is complete and durable before records go to the new one.
            this.rolling = true;
            try {
              await this.syncAll();
              await this.openNext(item.roll);
            } finally {
              this.rolling = false;
            }
          } else {
            bufs.push(item.rec);
            upto = item.n;
          }
        }
        if (bufs.length) await this.writeOut(bufs, upto);
        if (this.syncMode === 'background') this.kickSync();
        else await this.syncAll();
      }
    } catch (err) {
      this.fail(err as Error);
    } finally {
      this.flushing = false;
      if (this.queue.length && !this.failure) this.schedule();
      else for (const r of this.idle.splice(0)) r();
    }
  }

  private async writeOut(bufs: Buffer[], upto: number): Promise<void> {
    const buf = bufs.length === 1 ? bufs[0]! : Buffer.concat(bufs);
    let done = 0;
    while (done < buf.length) {
      const w = this.io.write(this.fd, done ? buf.subarray(done) : buf, this.pos + done);
      const n = typeof w === 'number' ? w : await w;
      if (n <= 0) throw new Error('write wrote nothing');
      done += n;
    }
    this.pos += buf.length;
    this.stats.bytes += buf.length;
    this.stats.writes++;
    this.writtenUpto = upto;
    this.stats.records = upto;
    release(this.writtenWaiters, upto);
  }

  /** Makes everything written so far durable (after the background sync in progress, if any). */
  private async syncAll(): Promise<void> {
    while (this.synced < this.writtenUpto && !this.failure) {
      if (this.syncing) await this.syncing;
      else await this.syncOnce();
    }
  }

  private syncOnce(): Promise<void> {
    const upto = this.writtenUpto;
    const p = (async () => {
      await this.io.fdatasync(this.fd);
      this.stats.syncs++;
      if (upto > this.synced) this.synced = upto;
      release(this.durableWaiters, this.synced);
    })().finally(() => {
      if (this.syncing === p) this.syncing = undefined;
    });
    this.syncing = p;
    return p;
  }

  /**
   * Background mode: fdatasync whatever was written, again and again while records keep coming,
   * BACKGROUND_SYNC_GAP_MS apart unless someone waits for durability.
   */
  private kickSync(): void {
    if (this.syncing || this.rolling || this.failure || this.synced >= this.writtenUpto) return;
    const wait = this.durableWaiters.length > 0 ? 0 : this.lastSyncEnd + BACKGROUND_SYNC_GAP_MS - performance.now();
    if (wait > 0) {
      this.syncTimer ??= setTimeout(() => {
        this.syncTimer = undefined;
        this.kickSync();
      }, wait).unref();
      return;
    }
    if (this.syncTimer) clearTimeout(this.syncTimer);
    this.syncTimer = undefined;
    this.syncOnce().then(
      () => {
        this.lastSyncEnd = performance.now();
        this.kickSync();
      },
      (err: Error) => this.fail(err),
    );
  }

  private async openNext(seq: number): Promise<void> {
    const old = this.fd;
    this.fd = await createSegment(this.dir, seq);
    this.seq = seq;
    this.pos = LOG_HEADER_BYTES;
    this.stats.segments++;
    await new Promise<void>((res) => fs.close(old, () => res()));
    const w = this.rollWaiters.get(seq);
    this.rollWaiters.delete(seq);
    w?.resolve();
  }

  private fail(err: Error): void {
    if (this.failure) return;
    this.failure = new GfsError(
      'EIO',
      `operation log in ${this.dir} cannot be written (${err.message}); this master refuses every change from now on`,
    );
    this.log?.error({ err: err.message, dir: this.dir, seq: this.seq }, 'operation log failed; no more mutations accepted');
    for (const w of this.writtenWaiters.splice(0)) w.reject(this.failure);
    for (const w of this.durableWaiters.splice(0)) w.reject(this.failure);
    for (const w of this.rollWaiters.values()) w.reject(this.failure);
    this.rollWaiters.clear();
    this.queue = [];
  }
}

/** Resolves the waiters (kept in append order) whose records are covered by `upto`. */
function release(list: Waiter[], upto: number): void {
  let i = 0;
  while (i < list.length && list[i]!.upto <= upto) list[i++]!.resolve();
  if (i > 0) list.splice(0, i);
}
