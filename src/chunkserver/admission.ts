// Admission control: requests in flight (reported to the master as load) and bounded pools
// for disk work. Past a pool's queue bound a request is shed with a retryable
// RESOURCE_EXHAUSTED (EAGAIN) instead of queueing without limit. Background work (clone reads
// at the source, clone writes at the target, scrubbing) has a small pool of its own, so it
// takes at most BACKGROUND_CONCURRENCY disk slots and never queues ahead of client I/O.
import { status as GrpcStatus } from '@grpc/grpc-js';
import pLimit, { type LimitFunction } from 'p-limit';
import { GfsError } from '../common/errors.js';

/** Reads of one piece (<= STREAM_PIECE) from disk running at once. */
export const READ_CONCURRENCY = 16;
/** Read pieces waiting for a slot before new ones are refused. */
export const READ_QUEUE_MAX = 512;
/** Local applies of writes running at once. */
export const WRITE_CONCURRENCY = 8;
/** Writes waiting for a slot before new ones are refused. */
export const WRITE_QUEUE_MAX = 256;
/** Background disk operations (one stream piece each) running at once. */
export const BACKGROUND_CONCURRENCY = 2;
/** Background operations waiting for a slot before new ones are refused. */
export const BACKGROUND_QUEUE_MAX = 64;

/**
 * Request metadata key naming the priority of a call; PRIORITY_BACKGROUND marks reads made
 * for re-replication (a Clone at another server reading from this one).
 */
export const PRIORITY_METADATA_KEY = 'gfs-priority';
export const PRIORITY_BACKGROUND = 'background';

export class Admission {
  private inFlightNow = 0;
  private readonly reads: LimitFunction;
  private readonly writes: LimitFunction;
  private readonly bg: LimitFunction;

  constructor(
    readonly readQueueMax = READ_QUEUE_MAX,
    readonly writeQueueMax = WRITE_QUEUE_MAX,
    readConcurrency = READ_CONCURRENCY,
    writeConcurrency = WRITE_CONCURRENCY,
    readonly backgroundQueueMax = BACKGROUND_QUEUE_MAX,
    backgroundConcurrency = BACKGROUND_CONCURRENCY,
  ) {
    this.reads = pLimit(readConcurrency);
    this.writes = pLimit(writeConcurrency);
    this.bg = pLimit(backgroundConcurrency);
  }

  /** Requests being served now. */
  get inFlight(): number {
    return this.inFlightNow;
  }

  /** Client work waiting in the pools. */
  get queued(): number {
    return this.reads.pendingCount + this.writes.pendingCount;
  }

  /** Background work running and waiting. */
  get backgroundLoad(): { active: number; queued: number } {
    return { active: this.bg.activeCount, queued: this.bg.pendingCount };
  }

  enter(): () => void {
    this.inFlightNow++;
    let left = false;
    return () => {
      if (!left) {
        left = true;
        this.inFlightNow--;
      }
    };
  }

  async track<T>(fn: () => Promise<T>): Promise<T> {
    const leave = this.enter();
    try {
      return await fn();
    } finally {
      leave();
    }
  }

  read<T>(fn: () => Promise<T>): Promise<T> {
    return this.admit(this.reads, this.readQueueMax, 'read', fn);
  }

  write<T>(fn: () => Promise<T>): Promise<T> {
    return this.admit(this.writes, this.writeQueueMax, 'write', fn);
  }

  /** Low-priority disk work: clone reads and writes, scrubbing. */
  background<T>(fn: () => Promise<T>): Promise<T> {
    return this.admit(this.bg, this.backgroundQueueMax, 'background task', fn);
  }

  private admit<T>(pool: LimitFunction, max: number, what: string, fn: () => Promise<T>): Promise<T> {
    if (pool.pendingCount >= max) {
      return Promise.reject(
        new GfsError('EAGAIN', `chunkserver overloaded: ${pool.pendingCount} ${what}s queued`, GrpcStatus.RESOURCE_EXHAUSTED),
      );
    }
    return pool(fn);
  }
}
