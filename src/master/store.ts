// The master's persistent store in its data directory: the lock, start-up recovery, the
// operation log (group commit) and checkpoints taken in the background when the log grows.
//
// Files in the data directory:
//   LOCK                          pid of the running master (datadir-lock.ts)
//   checkpoint-<seq>.ckpt         state before segment <seq> (checkpoint.ts); the newest two kept
//   oplog-<seq>.log               mutation records (oplog.ts); those after the older kept checkpoint
import { mkdir } from 'node:fs/promises';
import { GfsError } from '../common/errors.js';
import type { Logger } from '../common/logger.js';
import { pruneDataDir, writeCheckpoint } from './checkpoint.js';
import { lockDataDir, type DataDirLock } from './datadir-lock.js';
import { MasterState, type Mutation } from './mutations.js';
import { createSegment, LOG_HEADER_BYTES, OpLog, type LogIo, type OpLogStats, type SyncMode } from './oplog.js';
import { recover, type RecoveryResult } from './recovery.js';
import { snapshot } from './snapshot.js';
import { now } from './time.js';

/** A checkpoint is taken when the current log segment passes this many bytes. */
export const CHECKPOINT_LOG_BYTES = 64 * 1024 * 1024;

/** What MasterCore needs from a store: where records go and when they are durable. */
export interface Journal {
  append(m: Mutation): void;
  /** Every record so far is on disk. */
  durable(): Promise<void>;
  /** Every record so far may be acknowledged (see SyncMode). */
  committed(): Promise<void>;
  readonly syncMode: SyncMode;
  readonly failed: GfsError | undefined;
}

export interface StoreOptions {
  dir: string;
  /** Chunk size for a fresh directory; for an existing one, it must match if given. */
  chunkSize: number;
  /** True when the caller chose the chunk size (a mismatch is an error, not a default). */
  chunkSizeExplicit?: boolean;
  replication: number;
  syncMode?: SyncMode;
  checkpointLogBytes?: number;
  log?: Logger;
  io?: LogIo;
}

export interface CheckpointStats {
  taken: number;
  failed: number;
  lastBytes: number;
  lastMs: number;
  lastInodes: number;
}

export class MasterStore implements Journal {
  readonly checkpoints: CheckpointStats = { taken: 0, failed: 0, lastBytes: 0, lastMs: 0, lastInodes: 0 };
  private state!: MasterState;
  private running: Promise<void> | undefined;
  private due = false;
  private closed = false;

  private constructor(
    readonly dir: string,
    readonly chunkSize: number,
    readonly recovery: RecoveryResult,
    private readonly oplog: OpLog,
    private readonly lock: DataDirLock,
    private readonly checkpointLogBytes: number,
    private readonly log: Logger | undefined,
  ) {}

  /**
   * Locks `dir`, recovers its state (or starts a fresh one with an initial checkpoint) and
   * opens a new log segment. The caller applies further mutations through `append`.
   */
  static async open(o: StoreOptions): Promise<{ store: MasterStore; state: MasterState }> {
    await mkdir(o.dir, { recursive: true });
    const lock = lockDataDir(o.dir);
    try {
      if (lock.tookOverFrom !== undefined) o.log?.warn({ dir: o.dir, pid: lock.tookOverFrom }, 'took over the stale lock of a dead master');
      const rec = await recover(o.dir, o.log);
      let state = rec.state;
      let chunkSize = o.chunkSize;
      let seq: number;
      if (state) {
        if (rec.chunkSize !== undefined && rec.chunkSize !== o.chunkSize) {
          if (o.chunkSizeExplicit) {
            throw new GfsError('EINVAL', `${o.dir} was created with chunk size ${rec.chunkSize}; cannot run it with chunk size ${o.chunkSize}`);
          }
          chunkSize = rec.chunkSize;
        }
        seq = rec.maxSeq + 1;
      } else {
        // Fresh: checkpoint 1 holds the empty tree (with its root time), segment 1 follows.
        state = new MasterState(now(), o.replication);
        seq = 1;
      }
      if (!rec.state) await writeCheckpoint(o.dir, { seq, chunkSize, createdMs: Date.now(), snapshot: snapshot(state) });
      const fd = await createSegment(o.dir, seq);
      const oplog = new OpLog(o.dir, seq, fd, { syncMode: o.syncMode ?? 'group', io: o.io, log: o.log });
      const store = new MasterStore(o.dir, chunkSize, rec, oplog, lock, o.checkpointLogBytes ?? CHECKPOINT_LOG_BYTES, o.log);
      store.state = state;
      return { store, state };
    } catch (err) {
      lock.release();
      throw err;
    }
  }

  get syncMode(): SyncMode {
    return this.oplog.syncMode;
  }

  get logStats(): OpLogStats {
    return this.oplog.stats;
  }

  get failed(): GfsError | undefined {
    return this.oplog.failed;
  }

  /** Current segment number. */
  get seq(): number {
    return this.oplog.seq;
  }

  append(m: Mutation): void {
    this.oplog.append(Buffer.from(JSON.stringify(m)));
    if (!this.due && !this.running && this.oplog.segmentBytes >= this.checkpointLogBytes) {
      this.due = true;
      // Not inside the caller's mutation: the snapshot is taken at the next turn, still
      // synchronously with the roll, so it sits exactly at a segment boundary.
      setImmediate(() => {
        this.due = false;
        if (!this.closed && !this.running && !this.failed) void this.checkpoint().catch(() => undefined);
      });
    }
  }

  durable(): Promise<void> {
    return this.oplog.durable();
  }

  committed(): Promise<void> {
    return this.oplog.committed();
  }

  /** Resolves when the checkpoint being written (if any) is done. */
  idle(): Promise<void> {
    return this.running?.catch(() => undefined) ?? Promise.resolve();
  }

  /**
   * Takes a checkpoint: the state is copied now (synchronously, at a log boundary), new
   * records go to a new segment, and the copy is written in the background. The old segment
   * and older checkpoints are removed only once the new checkpoint is durable.
   */
  checkpoint(): Promise<void> {
    if (this.running) return this.running;
    if (this.failed) return Promise.reject(this.failed);
    const snap = snapshot(this.state);
    const seq = this.oplog.seq + 1;
    const rolled = this.oplog.roll(seq);
    const p = (async () => {
      try {
        await rolled;
        await this.writeCheckpointNow(seq, snap);
      } catch (err) {
        this.checkpoints.failed++;
        this.log?.error({ err: (err as Error).message, seq }, 'checkpoint failed; the log keeps growing and the previous checkpoint stays');
        throw err;
      } finally {
        this.running = undefined;
      }
    })();
    this.running = p;
    return p;
  }

  private async writeCheckpointNow(seq: number, snap: ReturnType<typeof snapshot>): Promise<void> {
    const t0 = performance.now();
    const { file, bytes } = await writeCheckpoint(this.dir, { seq, chunkSize: this.chunkSize, createdMs: Date.now(), snapshot: snap });
    const removed = await pruneDataDir(this.dir);
    const ms = performance.now() - t0;
    Object.assign(this.checkpoints, { taken: this.checkpoints.taken + 1, lastBytes: bytes, lastMs: ms, lastInodes: snap.inodes.length });
    this.log?.info({ file, bytes, inodes: snap.inodes.length, ms: Math.round(ms), removed: removed.length }, 'checkpoint written');
  }

  /**
   * Flushes the log, waits for a running checkpoint, releases the lock. With `checkpoint`, a
   * clean stop first writes a checkpoint when the log has records, so the next start is fast.
   */
  async close(opts: { checkpoint?: boolean } = {}): Promise<void> {
    if (this.closed) return;
    await this.idle();
    if (opts.checkpoint && !this.failed && this.oplog.segmentBytes > LOG_HEADER_BYTES) {
      await this.checkpoint().catch(() => undefined);
    }
    this.closed = true;
    await this.idle();
    await this.oplog.close();
    this.lock.release();
    this.log?.info({ dir: this.dir, syncMode: this.syncMode, ...this.oplog.stats, checkpoints: this.checkpoints.taken }, 'operation log closed');
  }
}
