// Bounded waiting: every await on something remote goes through one of these, so a dead peer
// turns into an ETIMEDOUT with a clear message instead of a hang.
import { setTimeout as sleep } from 'node:timers/promises';
import { GfsError } from './errors.js';

export { sleep };

/** Rejects with ETIMEDOUT if `promise` has not settled within `ms`. */
export function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new GfsError('ETIMEDOUT', `${what}: no answer within ${ms} ms`)), ms);
    timer.unref?.();
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Absolute deadline for a gRPC call starting now. */
export function deadlineIn(ms: number): Date {
  return new Date(Date.now() + ms);
}

export interface RetryOptions {
  /** Give up after this many attempts in all. */
  attempts: number;
  /** First backoff; doubles each time up to maxDelayMs, with full jitter. */
  baseDelayMs: number;
  maxDelayMs: number;
  /** Give up when the next attempt would start after this wall-clock time (ms since epoch). */
  deadline?: number;
  /**
   * Or: give up when it would start this long after the first attempt began. Lets a caller
   * keep one options object for every call instead of building one per call.
   */
  windowMs?: number;
  /** Which errors are worth another attempt; the rest are thrown at once. */
  retryable?: (err: unknown) => boolean;
  onRetry?: (err: unknown, attempt: number, delayMs: number) => void;
}

const defaultRetryable = (err: unknown) => err instanceof GfsError && err.retryable;

/** Exponential backoff with full jitter (AWS architecture blog), bounded in attempts and time. */
export async function retry<T>(fn: (attempt: number) => Promise<T>, opts: RetryOptions): Promise<T> {
  const retryable = opts.retryable ?? defaultRetryable;
  const deadline = opts.deadline ?? (opts.windowMs !== undefined ? Date.now() + opts.windowMs : undefined);
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      if (attempt >= opts.attempts || !retryable(err)) throw err;
      const cap = Math.min(opts.maxDelayMs, opts.baseDelayMs * 2 ** (attempt - 1));
      const delay = Math.random() * cap;
      if (deadline !== undefined && Date.now() + delay >= deadline) throw err;
      opts.onRetry?.(err, attempt, delay);
      await sleep(delay);
    }
  }
}
