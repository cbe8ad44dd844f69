// Reads a byte range of a file: split into chunk pieces run in parallel (bounded), each piece
// read from the best replica and failed over on error, bad checksum, stale version or
// timeout. Bad bytes never reach the caller: chunkservers verify checksums before sending.
import { status as GrpcStatus } from '@grpc/grpc-js';
import { GfsError } from '../common/errors.js';
import { retry, type RetryOptions } from '../common/deadline.js';
import type { TaskLimit } from '../common/task-limit.js';
import type { Logger } from '../common/logger.js';
import type { ChunkRpc } from './chunk-rpc.js';
import type { ChunkLocator } from './chunk-locator.js';
import type { ChunkInfo } from './location-cache.js';
import type { MasterRpc } from './master-rpc.js';
import type { ReplicaPicker } from './replica-picker.js';
import { singlePiece, splitRange, type Piece } from './pieces.js';
import type { ReportBadReplicaRequest } from '../generated/gfs/index.js';

/** How long one piece keeps trying (all replicas, fresh locations) before the read fails. */
export const READ_RETRY_WINDOW_MS = 30_000;
const READ_RETRY_BASE_MS = 50;
const READ_RETRY_MAX_DELAY_MS = 2_000;
/** One options object for every piece: a small read is made often, and each made one. */
const READ_RETRY: RetryOptions = {
  attempts: Number.MAX_SAFE_INTEGER,
  baseDelayMs: READ_RETRY_BASE_MS,
  maxDelayMs: READ_RETRY_MAX_DELAY_MS,
  windowMs: READ_RETRY_WINDOW_MS,
  retryable: (err) => err instanceof GfsError && (err.retryable || err.code === 'ESTALE'),
};

export interface ReaderDeps {
  master: MasterRpc;
  chunks: ChunkRpc;
  locator: ChunkLocator;
  picker: ReplicaPicker;
  limit: TaskLimit;
  pieceBytes: number;
  log?: Logger;
}

export class ChunkReader {
  constructor(private readonly d: ReaderDeps) {}

  /** `into`: where the bytes go (at least `length` bytes; holes are zero-filled there too). */
  read(ino: number, offset: number, length: number, into?: Buffer): Promise<Buffer> {
    if (length === 0) return Promise.resolve(Buffer.alloc(0));
    if (into && into.length < length) return Promise.reject(new GfsError('EINVAL', `read of ${length} bytes into a buffer of ${into.length}`));
    // A size learnt in the last SIZE_TTL_MS (open, getattr, our own writes) bounds the read:
    // growth by other clients shows within that time, as the kernel's attribute cache does.
    const { locator } = this.d;
    const size = locator.cache.size(ino);
    // Both known (nearly every read): no async frame, whose promise would wrap the pool's.
    if (locator.chunkSize && size !== undefined) return this.readSized(ino, offset, length, into, locator.chunkSize, size);
    return this.readUnsized(ino, offset, length, into);
  }

  private async readUnsized(ino: number, offset: number, length: number, into: Buffer | undefined): Promise<Buffer> {
    const { locator } = this.d;
    const chunkSize = locator.chunkSize || (await locator.ensureChunkSize(ino));
    let size = locator.cache.size(ino);
    if (size === undefined) {
      await locator.lookupRead(ino, offset, length);
      size = locator.cache.size(ino) ?? 0;
    }
    return this.readSized(ino, offset, length, into, chunkSize, size);
  }

  private readSized(ino: number, offset: number, length: number, into: Buffer | undefined, chunkSize: number, size: number): Promise<Buffer> {
    if (offset >= size) return Promise.resolve(Buffer.alloc(0));
    const n = Math.min(length, size - offset);
    const one = singlePiece(offset, n, chunkSize, this.d.pieceBytes);
    if (one) {
      // A single piece gets its buffer only once the pool runs it: thousands of small reads
      // waiting in the queue then hold only their closure and piece (each byte held per
      // waiting read is copied by every young-generation GC while it waits).
      return this.d.limit(() => {
        const out = into ? into.subarray(0, n) : Buffer.allocUnsafe(n);
        return this.readPiece(ino, offset, one, out).then(() => out);
      });
    }
    const pieces = splitRange(offset, n, chunkSize, this.d.pieceBytes);
    const out = into ? into.subarray(0, n) : Buffer.allocUnsafe(n);
    return Promise.all(pieces.map((p) => this.d.limit(() => this.readPiece(ino, offset, p, out)))).then(() => out);
  }

  /**
   * One try at bytes [offset, offset+length) of chunk `info` from its best replica: no retry,
   * no failover, and no replica marked bad on failure (the caller's locations are a guess).
   */
  async readOnce(info: ChunkInfo, offset: number, length: number): Promise<Buffer> {
    const { picker, chunks } = this.d;
    const r = picker.best(info.replicas);
    if (!r) throw new GfsError('EHOSTDOWN', `chunk ${info.handle}: no replica to read`);
    const out = Buffer.allocUnsafe(length);
    const got = await this.d.limit(() => picker.track(r.addr, () => chunks.read(r, info.handle, info.version, offset, length, out, 0, info.token)));
    return out.subarray(0, got);
  }

  /**
   * One piece. The common case, its location known and its best replica answering, takes one
   * call and no retry machinery: with thousands of small reads in flight, the closures and
   * promises of retry() and of the failover loop were a good part of what the client's GC
   * had to copy. Anything else goes through readPieceRetrying from the start.
   */
  private readPiece(ino: number, fileOffset: number, p: Piece, out: Buffer): Promise<void> {
    const { locator, picker, chunks } = this.d;
    const info = locator.cache.forRead(ino, p.index);
    const r = info && picker.best(info.replicas);
    if (!info || !r) return this.readPieceRetrying(ino, fileOffset, p, out);
    return picker.track(r.addr, () => chunks.read(r, info.handle, info.version, p.chunkOffset, p.length, out, p.at, info.token)).then(
      (got) => {
        out.fill(0, p.at + got, p.at + p.length);
        picker.succeeded(r.addr);
      },
      (err) => {
        picker.failed(r.addr);
        this.onReplicaError(info.handle, r.serverId, r.addr, err);
        // The failed replica is now ordered last; the full path tries every replica, with
        // fresh locations and backoff, and decides about holes and never-written chunks.
        return this.readPieceRetrying(ino, fileOffset, p, out);
      },
    );
  }

  private readPieceRetrying(ino: number, fileOffset: number, p: Piece, out: Buffer): Promise<void> {
    const { locator, picker, chunks } = this.d;
    return retry(
      async () => {
        let info = locator.cache.forRead(ino, p.index);
        if (info === undefined) {
          await locator.lookupRead(ino, fileOffset + p.at, p.length);
          info = locator.cache.forRead(ino, p.index);
        }
        if (!info) {
          out.fill(0, p.at, p.at + p.length); // a hole
          return;
        }
        if (info.replicas.length === 0) {
          locator.cache.invalidateChunk(ino, p.index);
          throw new GfsError('EHOSTDOWN', `chunk ${info.handle} of inode ${ino} has no live replica`);
        }
        let last: unknown;
        let missing = 0;
        /** One replica: true when it answered; false to try the next; 'stale' when our locations are old. */
        const attempt = async (r: ChunkInfo['replicas'][number]): Promise<boolean | 'stale'> => {
          try {
            const got = await picker.track(r.addr, () =>
              chunks.read(r, info.handle, info.version, p.chunkOffset, p.length, out, p.at, info.token),
            );
            out.fill(0, p.at + got, p.at + p.length);
            picker.succeeded(r.addr);
            return true;
          } catch (err) {
            last = err;
            if (err instanceof GfsError && err.code === 'ENOENT') missing++;
            picker.failed(r.addr);
            this.onReplicaError(info.handle, r.serverId, r.addr, err);
            return err instanceof GfsError && err.code === 'ESTALE' ? 'stale' : false;
          }
        };
        const first = picker.best(info.replicas)!;
        let outcome = await attempt(first);
        if (outcome === true) return;
        if (outcome === false) {
          for (const r of picker.order(info.replicas)) {
            if (r === first) continue;
            outcome = await attempt(r);
            if (outcome !== false) break;
          }
          if (outcome === true) return;
        }
        if (info.unwritten && missing === info.replicas.length) {
          // Allocated, never written (a file extended by truncate, a write still buffered or
          // cut off by a truncate): no replica has it yet, and its bytes read as zeros.
          out.fill(0, p.at, p.at + p.length);
          return;
        }
        locator.cache.invalidateChunk(ino, p.index);
        throw asRetryable(last, `read of chunk ${info.handle} failed on every replica`);
      },
      READ_RETRY,
    );
  }

  private onReplicaError(handle: number, serverId: string, addr: string, err: unknown): void {
    const e = err instanceof GfsError ? err : undefined;
    this.d.log?.warn({ handle, server: addr, err: e?.message ?? String(err) }, 'replica read failed');
    if (e?.code === 'EIO' && /checksum/i.test(e.message)) {
      // The chunkserver reports it too; telling the master now speeds up repair.
      this.d.master
        .call<ReportBadReplicaRequest, unknown>('ReportBadReplica', { handle, serverId, reason: e.message }, true)
        .catch(() => undefined);
    }
  }
}

/** Wraps a replica error so the retry loop tries again (with fresh locations). */
export function asRetryable(err: unknown, what: string): GfsError {
  // A replica without the chunk (ENOENT) or with another version (ESTALE) means our
  // locations are old: try again with fresh ones.
  if (err instanceof GfsError && (err.retryable || err.code === 'ESTALE')) return err;
  const msg = err instanceof Error ? err.message : String(err);
  return new GfsError('EIO', `${what}: ${msg}`, GrpcStatus.INTERNAL /* retryable */);
}
