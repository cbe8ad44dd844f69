// Orders the replicas of a chunk for a read: servers that failed us recently go last, then
// the least loaded first (our own requests in flight to it plus the load the master reported).
import type { ChunkLocation__Output } from '../generated/gfs/index.js';

/** A server that failed a call is avoided for this long. */
const FAILURE_PENALTY_MS = 10_000;

export class ReplicaPicker {
  private readonly inflight = new Map<string, number>();
  private readonly failedUntil = new Map<string, number>();

  order(replicas: ChunkLocation__Output[]): ChunkLocation__Output[] {
    const now = Date.now();
    const score = (r: ChunkLocation__Output) => {
      const penalty = (this.failedUntil.get(r.addr) ?? 0) > now ? 1e9 : 0;
      return penalty + (this.inflight.get(r.addr) ?? 0) + r.load;
    };
    // Random tie-break spreads readers of one chunk over its replicas.
    return replicas
      .map((r) => ({ r, s: score(r), t: Math.random() }))
      .sort((a, b) => a.s - b.s || a.t - b.t)
      .map((x) => x.r);
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
