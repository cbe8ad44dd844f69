// Admission control: requests in flight (reported to the master as load) and bounded pools
// for disk work. Past a pool's queue bound a request is shed with a retryable
// RESOURCE_EXHAUSTED (EAGAIN) instead of queueing without limit.
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

export class Admission {
  private inFlightNow = 0;
  private readonly reads: LimitFunction;
  private readonly writes: LimitFunction;

  constructor(
    readonly readQueueMax = READ_QUEUE_MAX,
    readonly writeQueueMax = WRITE_QUEUE_MAX,
    readConcurrency = READ_CONCURRENCY,
    writeConcurrency = WRITE_CONCURRENCY,
  ) {
    this.reads = pLimit(readConcurrency);
    this.writes = pLimit(writeConcurrency);
  }

  /** Requests being served now. */
  get inFlight(): number {
    return this.inFlightNow;
  }

  /** Work waiting in the pools. */
  get queued(): number {
    return this.reads.pendingCount + this.writes.pendingCount;
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

  private admit<T>(pool: LimitFunction, max: number, what: string, fn: () => Promise<T>): Promise<T> {
    if (pool.pendingCount >= max) {
      return Promise.reject(
        new GfsError('EAGAIN', `chunkserver overloaded: ${pool.pendingCount} ${what}s queued`, GrpcStatus.RESOURCE_EXHAUSTED),
      );
    }
    return pool(fn);
  }
}
