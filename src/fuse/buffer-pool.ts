// Write-back memory for one mount: a byte budget shared by every open file, and a pool of
// recycled, pre-faulted extent buffers (LIMITS.md: fresh 1 MiB slabs cost ~70 µs per 128 KiB
// write in first-touch page faults, recycled ones ~16 µs). Waiting writers block (await), never
// grow memory past the budget; `onPressure` asks the owner to start flushing someone.
// Smaller buffers (the first extent of a small file) are recycled too: a fresh one per file is
// tens of MB/s of external memory under `tar -x`, and V8 answers that with a full mark-compact
// every few hundred milliseconds (it counts external allocations toward its old-space limit).

/** Idle small buffers kept for reuse, in bytes. */
const SMALL_IDLE_BYTES = 16 * 1024 * 1024;

export class BufferPool {
  private readonly free: Buffer[] = [];
  /** Idle buffers smaller than an extent, by size. */
  private readonly freeSmall = new Map<number, Buffer[]>();
  private smallIdleBytes = 0;
  private used = 0;
  private readonly waiters: Array<{ bytes: number; resolve: (b: Buffer) => void }> = [];

  constructor(
    /** Size of a full extent buffer (the unit that is pooled and pre-faulted). */
    readonly extentBytes: number,
    /** Budget for all buffered write data of the mount. */
    readonly totalBytes: number,
    /** Full buffers kept for reuse when idle. */
    private readonly keepIdle: number,
    private readonly onPressure: () => void,
  ) {}

  get usedBytes(): number {
    return this.used;
  }

  get waiting(): number {
    return this.waiters.length;
  }

  /** A buffer of `bytes` (extentBytes for a full one) if the budget allows it right now. */
  tryAcquire(bytes: number): Buffer | undefined {
    if (this.waiters.length > 0 || this.used + bytes > this.totalBytes) return undefined;
    return this.take(bytes);
  }

  /** Waits (FIFO) until the budget has room for `bytes`. */
  acquire(bytes: number): Promise<Buffer> {
    const now = this.tryAcquire(bytes);
    if (now) return Promise.resolve(now);
    const p = new Promise<Buffer>((resolve) => this.waiters.push({ bytes, resolve }));
    this.onPressure();
    return p;
  }

  release(buf: Buffer): void {
    this.used -= buf.length;
    if (buf.length === this.extentBytes) {
      if (this.free.length < this.keepIdle) this.free.push(buf);
    } else if (this.smallIdleBytes + buf.length <= SMALL_IDLE_BYTES) {
      let list = this.freeSmall.get(buf.length);
      if (!list) this.freeSmall.set(buf.length, (list = []));
      list.push(buf);
      this.smallIdleBytes += buf.length;
    }
    this.wake();
  }

  /** Drops idle buffers (e.g. after a burst) so the process does not keep them resident. */
  trim(keep = 0): void {
    this.free.length = Math.min(this.free.length, keep);
    this.freeSmall.clear();
    this.smallIdleBytes = 0;
  }

  private take(bytes: number): Buffer {
    this.used += bytes;
    if (bytes === this.extentBytes) {
      const b = this.free.pop();
      if (b) return b;
      const fresh = Buffer.allocUnsafeSlow(bytes);
      fresh.fill(0); // fault the pages in now, once, instead of on the hot write path
      return fresh;
    }
    const b = this.freeSmall.get(bytes)?.pop();
    if (b) {
      this.smallIdleBytes -= bytes;
      return b;
    }
    return Buffer.allocUnsafeSlow(bytes);
  }

  /** Hands buffers to waiters in order while the budget allows (accounted before they run). */
  private wake(): void {
    while (this.waiters.length > 0) {
      const w = this.waiters[0]!;
      if (this.used + w.bytes > this.totalBytes) {
        this.onPressure();
        return;
      }
      this.waiters.shift();
      w.resolve(this.take(w.bytes));
    }
  }
}
