// Per-operation counters and latency totals (FUSE ops, RPCs): cheap enough to keep on in
// production, read by logs and the benchmark to see where time goes.
import { callSettled } from './call-promise.js';
export interface OpStat {
  count: number;
  errors: number;
  totalMs: number;
  maxMs: number;
}

export class OpStats {
  /**
   * Also told about every record of every OpStats (common/metrics.ts sets it to feed its
   * Prometheus histograms; unset = nothing more is done).
   */
  static sink: ((name: string, ms: number, failed: boolean) => void) | undefined;

  private readonly ops = new Map<string, OpStat>();

  record(name: string, ms: number, failed = false): void {
    OpStats.sink?.(name, ms, failed);
    let s = this.ops.get(name);
    if (!s) this.ops.set(name, (s = { count: 0, errors: 0, totalMs: 0, maxMs: 0 }));
    s.count++;
    if (failed) s.errors++;
    s.totalMs += ms;
    if (ms > s.maxMs) s.maxMs = ms;
  }

  /**
   * Times a promise-returning call under `name`. Not async: on a small read's path an async
   * frame here was one more promise and two more microtask turns per call.
   */
  time<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const t = performance.now();
    return callSettled(fn, (failed) => this.record(name, performance.now() - t, failed));
  }

  /** Calls recorded so far, of every op. */
  total(): number {
    let n = 0;
    for (const s of this.ops.values()) n += s.count;
    return n;
  }

  /** { op: { count, errors, meanMs, maxMs, totalMs } }, busiest first. */
  snapshot(): Record<string, { count: number; errors: number; meanMs: number; maxMs: number; totalMs: number }> {
    const out: Record<string, { count: number; errors: number; meanMs: number; maxMs: number; totalMs: number }> = {};
    const sorted = [...this.ops].sort((a, b) => b[1].totalMs - a[1].totalMs);
    for (const [k, s] of sorted) {
      out[k] = { count: s.count, errors: s.errors, meanMs: round(s.totalMs / s.count), maxMs: round(s.maxMs), totalMs: round(s.totalMs) };
    }
    return out;
  }

  reset(): void {
    this.ops.clear();
  }
}

const round = (n: number) => Math.round(n * 1000) / 1000;
