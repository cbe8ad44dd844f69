// Releases (last close of a handle) sent to the master in batches. A release changes nothing
// the closing program waits for: close(2) already returned with its data committed (flush).
// It only tells the master that this client's handle is gone, so an unlinked file can be
// freed and the handle's access grant dropped. One RPC per closed file was a third of the
// master calls of `tar -x`, so releases made within RELEASE_BATCH_MS of each other share one.
// The cost is that a release can reach the master after a later call of this client (an
// unlink, a new open of the same file): opens are counted per handle there, so the counts
// and the freeing come out the same, only up to RELEASE_BATCH_MS later.

/** How long a release waits for others to share its RPC. */
export const RELEASE_BATCH_MS = 50;
/** Releases per RPC at most (an RPC leaves as soon as it has this many). */
export const RELEASE_BATCH_MAX = 512;

interface Waiter {
  resolve(): void;
  reject(err: unknown): void;
}

export class ReleaseBatcher {
  private inos: number[] = [];
  private waiters: Waiter[] = [];
  private timer: NodeJS.Timeout | undefined;

  /** `send` makes one Release RPC for the given inodes (one entry per handle closed). */
  constructor(private readonly send: (inos: number[]) => Promise<void>) {}

  /** Resolves once the master has applied this release (rejects with the RPC's error). */
  release(ino: number): Promise<void> {
    const p = new Promise<void>((resolve, reject) => this.waiters.push({ resolve, reject }));
    this.inos.push(ino);
    if (this.inos.length >= RELEASE_BATCH_MAX) void this.flush();
    else this.timer ??= setTimeout(() => void this.flush(), RELEASE_BATCH_MS);
    return p;
  }

  /** Sends what is waiting now (unmount, close); resolves when that batch is answered. */
  async flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.inos.length === 0) return;
    const inos = this.inos;
    const waiters = this.waiters;
    this.inos = [];
    this.waiters = [];
    try {
      await this.send(inos);
      for (const w of waiters) w.resolve();
    } catch (err) {
      for (const w of waiters) w.reject(err);
    }
  }

  get pending(): number {
    return this.inos.length;
  }
}
