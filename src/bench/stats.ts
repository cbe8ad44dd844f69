// Small statistics for benchmark reports: medians and spreads, not single noisy numbers.
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

export function summarize(values: number[]): { mean: number; p50: number; p99: number; min: number; max: number } {
  const s = [...values].sort((a, b) => a - b);
  const mean = s.reduce((a, b) => a + b, 0) / (s.length || 1);
  return { mean, p50: percentile(s, 50), p99: percentile(s, 99), min: s[0] ?? NaN, max: s[s.length - 1] ?? NaN };
}

/**
 * The middle value; for an even count, the mean of the two middle ones. (The nearest-rank
 * percentile would give the lower one: with the 2 repetitions a time budget can leave, every
 * median would be the better run for times and the worse one for rates.)
 */
export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const mid = s.length >>> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Samples RSS every few ms; `peak()` minus the baseline is the memory a phase added. */
export class RssSampler {
  private max = 0;
  private timer?: NodeJS.Timeout;
  start(everyMs = 5): void {
    this.max = process.memoryUsage.rss();
    this.timer = setInterval(() => {
      this.max = Math.max(this.max, process.memoryUsage.rss());
    }, everyMs);
  }
  stop(): number {
    clearInterval(this.timer);
    this.max = Math.max(this.max, process.memoryUsage.rss());
    return this.max;
  }
}
