// A token bucket for bytes per second (clones, scrubbing). `take(n)` spends n tokens and, when
// that leaves the bucket in debt, sleeps until the debt is repaid at the refill rate. Debt
// rather than "wait until n tokens are there" lets one take be larger than the burst (a whole
// stream piece) and keeps concurrent takers fair: each one waits out the debt it found.
import { setTimeout as sleep } from 'node:timers/promises';

export class TokenBucket {
  private tokens: number;
  private last: number;

  /**
   * @param bytesPerSec refill rate; Infinity (or any non-finite value) never waits
   * @param burst most tokens saved up while idle (default: a quarter second of rate)
   */
  constructor(
    readonly bytesPerSec: number,
    readonly burst = bytesPerSec / 4,
  ) {
    if (!(bytesPerSec > 0)) throw new RangeError(`token bucket rate must be positive, got ${bytesPerSec}`);
    this.tokens = Number.isFinite(burst) ? burst : 0;
    this.last = performance.now();
  }

  get unlimited(): boolean {
    return !Number.isFinite(this.bytesPerSec);
  }

  /** Spends n tokens; resolves once the bucket is out of debt. Rejects if `signal` aborts. */
  async take(n: number, signal?: AbortSignal): Promise<void> {
    if (this.unlimited || n <= 0) return;
    this.refill();
    this.tokens -= n;
    if (this.tokens >= 0) return;
    const ms = (-this.tokens / this.bytesPerSec) * 1000;
    await sleep(ms, undefined, signal ? { signal } : undefined);
  }

  private refill(): void {
    const now = performance.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.bytesPerSec);
    this.last = now;
  }
}
