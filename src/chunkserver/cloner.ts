// Clone (re-replication, rebalancing): copies a chunk at a version from another chunkserver.
// The bytes come through the source's streaming Read (which verifies every block as it reads),
// in segments of a few MiB, each its own stream with a deadline sized by its length. They are
// written to `<handle>.clone` (invisible to reads and reports) while checksums are computed;
// then the file is fdatasynced, read back and verified against those checksums, and installed
// atomically at the version (see ChunkStore.installClone). A failure or a crash leaves no chunk.
//
// Bounds: a token bucket per clone (CLONE_BYTES_PER_SEC or the request's bytes_per_sec), at
// most CLONE_CONCURRENCY clones running with CLONE_QUEUE_MAX more waiting (past that: a
// retryable RESOURCE_EXHAUSTED), and every disk operation in Admission's background pool, so
// clones never take slots from client reads and writes. The source serves the reads from its
// own background pool too (PRIORITY_METADATA_KEY on the call).
import { open, type FileHandle } from 'node:fs/promises';
import * as grpc from '@grpc/grpc-js';
import pLimit, { type LimitFunction } from 'p-limit';
import { GfsError, fromServiceError } from '../common/errors.js';
import { MiB, STREAM_PIECE } from '../common/limits.js';
import type { Logger } from '../common/logger.js';
import type { ClientPool } from '../common/rpc.js';
import type { ChunkServerClient } from '../generated/gfs/ChunkServer.js';
import type { CloneRequest__Output, ReadReply__Output } from '../generated/gfs/index.js';
import { PRIORITY_BACKGROUND, PRIORITY_METADATA_KEY, type Admission } from './admission.js';
import { BLOCK, firstBadBlock, RunningBlockCrcs } from './checksum.js';
import { fromBase, readFull, writeFull, ioError, type RandomAccessFile } from './chunk-io.js';
import type { ChunkStore } from './chunk-store.js';
import { checkPeers } from './peers.js';
import { TokenBucket } from './rate-limiter.js';
import { checkHandle, checkUint, MAX_CHUNK_BYTES } from './validate.js';

/** Default bandwidth bound of one clone (bytes per second). */
export const CLONE_BYTES_PER_SEC = 64 * MiB;
/** Clones copying at once on this server. */
export const CLONE_CONCURRENCY = 2;
/** Clones waiting for a slot before new ones are refused with RESOURCE_EXHAUSTED. */
export const CLONE_QUEUE_MAX = 32;
/** Largest range asked of the source in one Read stream. */
export const CLONE_SEGMENT_MAX = 4 * MiB;
/** Deadline of one segment's Read stream: this much ... */
export const CLONE_DEADLINE_BASE_MS = 5_000;
/** ... plus this much per MiB asked (a source slower than 0.5 MiB/s fails the clone). */
export const CLONE_DEADLINE_PER_MIB_MS = 2_000;

export interface ClonerOptions {
  store: ChunkStore;
  peers: ClientPool<ChunkServerClient>;
  admission: Admission;
  /** Address this server is known by (a clone from itself is refused). */
  self: () => string;
  log: Logger;
  bytesPerSec?: number; // default CLONE_BYTES_PER_SEC
  concurrency?: number; // default CLONE_CONCURRENCY
  queueMax?: number; // default CLONE_QUEUE_MAX
}

export interface CloneStats {
  /** Clones copying now. */
  active: number;
  /** Clones waiting for a slot. */
  queued: number;
  /** Clones that installed a chunk. */
  succeeded: number;
  failed: number;
  /** Requests answered OK because the chunk was already here at that version. */
  alreadyPresent: number;
  /** Requests refused because the queue was full. */
  shed: number;
  /** Bytes copied by successful clones. */
  bytes: number;
}

interface Job {
  handle: number;
  version: number;
  source: string;
  bytesPerSec: number;
  /** Master-issued read token for the source, sent with every segment's Read. */
  token: Buffer;
  ac: AbortController;
  waiters: number;
  done: Promise<void>;
}

/** Bytes asked per segment: about a quarter second at the clone's rate, whole blocks. */
export function segmentBytes(bytesPerSec: number): number {
  const quarter = Math.floor(bytesPerSec / 4 / BLOCK) * BLOCK;
  return Math.min(CLONE_SEGMENT_MAX, Math.max(BLOCK, quarter));
}

export class Cloner {
  private readonly pool: LimitFunction;
  private readonly jobs = new Map<number, Job>();
  private readonly bytesPerSec: number;
  private readonly concurrency: number;
  private readonly queueMax: number;
  private closed = false;
  private readonly counts = { succeeded: 0, failed: 0, alreadyPresent: 0, shed: 0, bytes: 0 };

  constructor(private readonly opts: ClonerOptions) {
    this.bytesPerSec = opts.bytesPerSec || CLONE_BYTES_PER_SEC;
    this.concurrency = opts.concurrency ?? CLONE_CONCURRENCY;
    this.queueMax = opts.queueMax ?? CLONE_QUEUE_MAX;
    if (!(this.bytesPerSec > 0)) throw new GfsError('EINVAL', `bad clone bandwidth ${opts.bytesPerSec}`);
    if (!(this.concurrency >= 1)) throw new GfsError('EINVAL', `bad clone concurrency ${opts.concurrency}`);
    this.pool = pLimit(this.concurrency);
  }

  get stats(): CloneStats {
    return { active: this.pool.activeCount, queued: this.pool.pendingCount, ...this.counts };
  }

  /**
   * Copies chunk `handle` at `version` from `source` and resolves when it is durable here.
   * Already here at that version: resolves at once. Here at a newer version: ESTALE. A clone
   * of the same chunk and version already running: waits for that one. `signal` (the caller
   * went away) aborts the copy once no caller is left waiting for it.
   */
  async clone(req: CloneRequest__Output, signal?: AbortSignal): Promise<void> {
    const { store, log } = this.opts;
    const handle = checkHandle(req.handle);
    const version = checkUint('version', req.version);
    const asked = checkUint('bytes_per_sec', req.bytesPerSec);
    const source = typeof req.source === 'string' ? req.source : '';
    if (source === '') throw new GfsError('EINVAL', `chunk ${handle}: clone needs a source address`);
    checkPeers(`chunk ${handle}: clone source`, [source], this.opts.self());
    if (store.cloneNeed(handle, version) === 'have') {
      this.counts.alreadyPresent++;
      log.debug({ handle, version, source }, 'clone: chunk already here at that version');
      return;
    }
    let job = this.jobs.get(handle);
    if (job?.ac.signal.aborted) throw new GfsError('EAGAIN', `chunk ${handle}: an aborted clone is still cleaning up here`);
    if (job && job.version !== version) {
      throw new GfsError('EAGAIN', `chunk ${handle}: a clone at version ${job.version} is running here; asked for ${version}`);
    }
    if (!job) {
      if (this.closed) throw new GfsError('EHOSTDOWN', 'chunkserver is stopping');
      const waiting = this.pool.activeCount + this.pool.pendingCount;
      if (waiting >= this.concurrency + this.queueMax) {
        this.counts.shed++;
        throw new GfsError(
          'EAGAIN',
          `chunkserver busy: ${this.pool.activeCount} clones running and ${this.pool.pendingCount} queued`,
          grpc.status.RESOURCE_EXHAUSTED,
        );
      }
      const j: Job = {
        handle,
        version,
        source,
        bytesPerSec: asked || this.bytesPerSec,
        token: Buffer.isBuffer(req.token) ? req.token : Buffer.alloc(0),
        ac: new AbortController(),
        waiters: 0,
        done: Promise.resolve(),
      };
      j.done = this.pool(() => this.run(j)).finally(() => this.jobs.delete(handle));
      j.done.catch(() => undefined); // observed by the waiters
      this.jobs.set(handle, j);
      job = j;
    }
    return this.wait(job, signal);
  }

  private async wait(job: Job, signal: AbortSignal | undefined): Promise<void> {
    job.waiters++;
    let left = false;
    const leave = () => {
      if (left) return;
      left = true;
      if (--job.waiters === 0) job.ac.abort(new GfsError('EIO', `chunk ${job.handle}: clone cancelled by the caller`, grpc.status.CANCELLED));
    };
    if (signal?.aborted) leave();
    signal?.addEventListener('abort', leave, { once: true });
    try {
      await job.done;
    } finally {
      signal?.removeEventListener('abort', leave);
      left = true;
    }
  }

  private async run(job: Job): Promise<void> {
    const { store, admission, log } = this.opts;
    const { handle, version, source } = job;
    if (job.ac.signal.aborted) throw job.ac.signal.reason;
    // The chunk may have arrived (or moved on) while this clone waited for a slot.
    if (store.cloneNeed(handle, version) === 'have') {
      this.counts.alreadyPresent++;
      return;
    }
    const t0 = performance.now();
    const ms = () => Math.round(performance.now() - t0);
    log.info({ handle, version, source, bytesPerSec: job.bytesPerSec }, 'clone started');
    const { path, base, signal: deleted } = await store.beginClone(handle);
    const signal = AbortSignal.any([job.ac.signal, deleted]);
    let fh: FileHandle | undefined;
    const crcs = new RunningBlockCrcs();
    try {
      const raw = await open(path, 'w+').catch((err) => Promise.reject(ioError(err, `chunk ${handle}: creating clone file`)));
      fh = raw;
      const file = fromBase(raw, base); // the data goes after the meta slots
      const seg = segmentBytes(job.bytesPerSec);
      const bucket = new TokenBucket(job.bytesPerSec, seg);
      for (;;) {
        const offset = crcs.length;
        const got = await this.readSegment(job, offset, seg, signal, async (data) => {
          const at = crcs.length;
          crcs.update(data);
          await admission.background(() => writeFull(file, data, at)).catch((err) =>
            Promise.reject(ioError(err, `chunk ${handle}: writing clone`)),
          );
        });
        if (crcs.length > MAX_CHUNK_BYTES) throw new GfsError('EIO', `chunk ${handle}: source ${source} sent more than ${MAX_CHUNK_BYTES} bytes`);
        if (got < seg) break;
        await bucket.take(got, signal);
      }
      const sums = crcs.finish();
      await admission.background(() => raw.datasync()).catch((err) => Promise.reject(ioError(err, `chunk ${handle}: syncing clone`)));
      await this.verifyWritten(file, handle, crcs.length, sums, signal);
      await raw.close();
      fh = undefined;
      if (signal.aborted) throw signal.reason;
      const installed = await store.installClone(handle, version, crcs.length, sums);
      if (installed) {
        this.counts.succeeded++;
        this.counts.bytes += crcs.length;
        log.info({ handle, version, source, bytes: crcs.length, ms: ms() }, 'clone finished');
      } else {
        this.counts.alreadyPresent++;
        log.info({ handle, version, source, bytes: crcs.length, ms: ms() }, 'clone finished: chunk arrived meanwhile, copy dropped');
      }
    } catch (err) {
      const e = signal.aborted ? (signal.reason as unknown) : err;
      this.counts.failed++;
      log.warn({ handle, version, source, bytes: crcs.length, ms: ms(), err: (e as Error)?.message ?? String(e) }, 'clone failed');
      throw e;
    } finally {
      await fh?.close().catch(() => undefined);
      await store.endClone(handle);
    }
  }

  /** One Read stream of [offset, offset+length) from the source; resolves the bytes received. */
  private async readSegment(
    job: Job,
    offset: number,
    length: number,
    signal: AbortSignal,
    onData: (data: Buffer) => Promise<void>,
  ): Promise<number> {
    if (signal.aborted) throw signal.reason;
    const { handle, version, source } = job;
    const md = new grpc.Metadata();
    md.set(PRIORITY_METADATA_KEY, PRIORITY_BACKGROUND);
    const deadline = Date.now() + CLONE_DEADLINE_BASE_MS + Math.ceil((CLONE_DEADLINE_PER_MIB_MS * length) / MiB);
    const stream = this.opts.peers.get(source).Read({ handle, version, offset, length, token: job.token }, md, { deadline });
    const cancel = () => stream.cancel();
    signal.addEventListener('abort', cancel, { once: true });
    let got = 0;
    try {
      for await (const msg of stream as AsyncIterable<ReadReply__Output>) {
        const data = msg.data;
        if (got + data.length > length || data.length > STREAM_PIECE) {
          throw new GfsError('EIO', `chunk ${handle}: source ${source} sent more than the ${length} bytes asked at ${offset}`);
        }
        await onData(data);
        got += data.length;
      }
      return got;
    } catch (err) {
      stream.cancel();
      if (signal.aborted) throw signal.reason;
      throw fromServiceError(err, `chunk ${handle}: clone from ${source}`);
    } finally {
      signal.removeEventListener('abort', cancel);
    }
  }

  /** Reads the synced clone file back and checks it against the checksums computed on arrival. */
  private async verifyWritten(fh: RandomAccessFile, handle: number, length: number, crcs: Uint32Array, signal: AbortSignal): Promise<void> {
    const { admission } = this.opts;
    for (let off = 0; off < length; off += STREAM_PIECE) {
      if (signal.aborted) throw signal.reason;
      const n = Math.min(STREAM_PIECE, length - off);
      const buf = await admission.background(() => readFull(fh, off, n)).catch((err) =>
        Promise.reject(ioError(err, `chunk ${handle}: reading clone back`)),
      );
      const bad = firstBadBlock(buf, off / BLOCK, crcs);
      if (bad >= 0) throw new GfsError('EIO', `chunk ${handle}: clone block ${bad} reads back different from what was received`);
    }
  }

  /** Aborts every clone (running or queued) and waits for them to clean up. */
  async close(): Promise<void> {
    this.closed = true;
    const jobs = [...this.jobs.values()];
    for (const j of jobs) j.ac.abort(new GfsError('EHOSTDOWN', `chunk ${j.handle}: clone aborted: chunkserver stopping`));
    await Promise.allSettled(jobs.map((j) => j.done));
  }
}
