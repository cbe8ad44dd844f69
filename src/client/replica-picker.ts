// Orders the replicas of a chunk for a read: servers that failed us recently go last, then
// the least loaded first (our own requests in flight to it plus the load the master reported).
import type { ChunkLocation__Output } from '../generated/gfs/index.js';

/** A server that failed a call is avoided for this long. */
const FAILURE_PENALTY_MS = 10_000;

export class ReplicaPicker {
  private readonly inflight = new Map<string, number>();
  private readonly failedUntil = new Map<string, number>();

  order(replicas: ChunkLocation__Output[]): ChunkLocation__Output[] {
    const n = replicas.length;
    if (n <= 1) return replicas;
    const now = Date.now();
    // Scores are whole numbers; a random fraction breaks ties and spreads readers of one chunk
    // over its replicas. An insertion sort of a handful: every small read passes here.
    const out = replicas.slice();
    const score = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const r = out[i]!;
      const penalty = (this.failedUntil.get(r.addr) ?? 0) > now ? 1e9 : 0;
      score[i] = penalty + (this.inflight.get(r.addr) ?? 0) + r.load + Math.random();
    }
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

  async track<T>(addr: string, fn: () => Promise<T>): Promise<T> {
    this.inflight.set(addr, (this.inflight.get(addr) ?? 0) + 1);
    try {
      return await fn();
    } finally {
      const n = (this.inflight.get(addr) ?? 1) - 1;
      if (n <= 0) this.inflight.delete(addr);
      else this.inflight.set(addr, n);
    }
  }

  failed(addr: string): void {
    this.failedUntil.set(addr, Date.now() + FAILURE_PENALTY_MS);
  }

  succeeded(addr: string): void {
    this.failedUntil.delete(addr);
  }
}
