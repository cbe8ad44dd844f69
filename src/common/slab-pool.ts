// Recycled buffers for the data path. A fresh large Buffer is fresh memory, and on this kind
// of machine the first touch of every page costs a fault: copying into new 4 MiB buffers runs
// at ~1 GB/s against ~40 GB/s into recycled ones (see shared/bench/LIMITS.md on write slabs).
// Buffers are handed out in power-of-two classes from MIN_SLAB up; what is given back is kept
// for reuse up to a bound of idle bytes, the rest is left to the garbage collector.

const MIN_SLAB = 64 * 1024;
/** Larger requests are not pooled (they are allocated and dropped). */
const MAX_SLAB = 64 * 1024 * 1024;

export interface Slab {
  /** Exactly the bytes asked for (a view on the pooled buffer). */
  readonly buf: Buffer;
  /** Gives the memory back; the buffer must not be used afterwards. Idempotent. */
  release(): void;
}

const NOOP = () => undefined;

function classOf(n: number): number {
  let c = MIN_SLAB;
  while (c < n) c *= 2;
  return c;
}

export class SlabPool {
  private readonly idle = new Map<number, Buffer[]>();
  private idleBytes = 0;

  /** `maxIdleBytes`: memory kept for reuse when nobody holds it. */
  constructor(private readonly maxIdleBytes: number) {}

  /** A buffer of `n` bytes (contents undefined). */
  lease(n: number): Slab {
    if (n === 0) return { buf: Buffer.alloc(0), release: NOOP };
    if (n > MAX_SLAB) return { buf: Buffer.allocUnsafeSlow(n), release: NOOP };
    const size = classOf(n);
    const list = this.idle.get(size);
    let whole = list?.pop();
    if (whole) this.idleBytes -= size;
    else whole = Buffer.allocUnsafeSlow(size);
    let done = false;
    const owned = whole;
    return {
      buf: whole.subarray(0, n),
      release: () => {
        if (done) return;
        done = true;
        this.give(owned);
      },
    };
  }

  get idleBytesNow(): number {
    return this.idleBytes;
  }

  private give(whole: Buffer): void {
    if (this.idleBytes + whole.length > this.maxIdleBytes) return;
    let list = this.idle.get(whole.length);
    if (!list) this.idle.set(whole.length, (list = []));
    list.push(whole);
    this.idleBytes += whole.length;
  }
}
