// Orders the replicas of a chunk for a read: servers that failed us recently go last, then
// the least loaded first (our own requests in flight to it plus the load the master reported).
import type { ChunkLocation__Output } from '../generated/gfs/index.js';
import { callSettled } from '../common/call-promise.js';

/** A server that failed a call is avoided for this long. */
const FAILURE_PENALTY_MS = 10_000;

export class ReplicaPicker {
  private readonly inflight = new Map<string, number>();
  private readonly failedUntil = new Map<string, number>();

  /**
   * The replica order() would put first, without building the order: every small read starts
   * here, and nearly all of them end with it.
   */
  best(replicas: ChunkLocation__Output[]): ChunkLocation__Output | undefined {
    if (replicas.length <= 1) return replicas[0];
    const now = Date.now();
    let best: ChunkLocation__Output | undefined;
    let bestScore = Infinity;
    for (const r of replicas) {
      const s = this.score(r, now);
      if (s < bestScore) {
        best = r;
        bestScore = s;
      }
    }
    return best;
  }

  /** Failed recently: last; then fewest of our requests in flight plus the master's load; a random fraction breaks ties. */
  private score(r: ChunkLocation__Output, now: number): number {
    const penalty = (this.failedUntil.get(r.addr) ?? 0) > now ? 1e9 : 0;
    return penalty + (this.inflight.get(r.addr) ?? 0) + r.load + Math.random();
  }

  order(replicas: ChunkLocation__Output[]): ChunkLocation__Output[] {
    const n = replicas.length;
    if (n <= 1) return replicas;
    const now = Date.now();
    // Scores are whole numbers; a random fraction breaks ties and spreads readers of one chunk
    // over its replicas. An insertion sort of a handful.
    const out = replicas.slice();
    const score = new Float64Array(n);
    for (let i = 0; i < n; i++) score[i] = this.score(out[i]!, now);
    for (let i = 1; i < n; i++) {
      const r = out[i]!;
      const s = score[i]!;
      let j = i - 1;
      for (; j >= 0 && score[j]! > s; j--) {
        out[j + 1] = out[j]!;
        score[j + 1] = score[j]!;
      }
      out[j + 1] = r;
      score[j + 1] = s;
    }
    return out;
  }

  /** Counts `fn` as in flight to addr while it runs. Not async: one promise less per read. */
  track<T>(addr: string, fn: () => Promise<T>): Promise<T> {
    this.inflight.set(addr, (this.inflight.get(addr) ?? 0) + 1);
    return callSettled(fn, () => this.untrack(addr));
  }

  private untrack(addr: string): void {
    const n = (this.inflight.get(addr) ?? 1) - 1;
    if (n <= 0) this.inflight.delete(addr);
    else this.inflight.set(addr, n);
  }

  failed(addr: string): void {
    this.failedUntil.set(addr, Date.now() + FAILURE_PENALTY_MS);
  }

  succeeded(addr: string): void {
    this.failedUntil.delete(addr);
  }
}
