// Early writeback of chunk data. A client's fsync must put every replica on disk, and with the
// kernel's defaults (background writeback from 10% of memory, here 2.4 GiB) nothing of a large
// file reaches the disk before that fsync: the whole file is written out while the client
// waits, after the network transfer instead of during it. Starting a flush of a chunk each time
// WRITE_BEHIND_BYTES more of it has been written overlaps the disk with the transfer, so the
// final fsync only has the tail left (seq write of 512 MiB with end_fsync: ~100 -> ~140 MB/s
// here). Small files never reach the mark and are left to the kernel, which may never need to
// write them before they are deleted.
//
// One flush runs at a time on the server: it holds a thread of the libuv pool for as long as
// the disk takes, and client reads and writes share that pool.

/** Bytes written to a chunk since its last flush that start a background flush of it. */
export const WRITE_BEHIND_BYTES = 8 * 1024 * 1024;

export interface WriteBehindHooks {
  /** Flushes the chunk's data to disk; resolves false when the chunk is gone (nothing to do). */
  flush(handle: number): Promise<boolean>;
  /** A flush failed: the data is not known to be on disk (chunk-store.ts marks the chunk corrupt). */
  failed(handle: number, err: unknown): void;
}

export class WriteBehind {
  /** Bytes written per chunk since its last flush began. */
  private readonly unflushed = new Map<number, number>();
  /** Chunks past the mark waiting for the running flush to end, oldest first. */
  private readonly waiting = new Set<number>();
  private running: Promise<void> | undefined;
  private flushesDone = 0;

  constructor(
    private readonly hooks: WriteBehindHooks,
    private readonly markBytes = WRITE_BEHIND_BYTES,
  ) {
    if (!Number.isSafeInteger(markBytes) || markBytes <= 0) throw new RangeError(`write-behind mark must be a positive byte count, got ${markBytes}`);
  }

  /** Background flushes finished since start. */
  get flushes(): number {
    return this.flushesDone;
  }

  /** Counts n bytes written to the chunk; starts or queues its flush once past the mark. */
  wrote(handle: number, n: number): void {
    const total = (this.unflushed.get(handle) ?? 0) + n;
    this.unflushed.set(handle, total);
    if (total < this.markBytes) return;
    if (this.running) this.waiting.add(handle);
    else this.start(handle);
  }

  /** The chunk's data is on disk (a client sync) or gone (deleted): nothing left to flush. */
  settled(handle: number): void {
    this.unflushed.delete(handle);
    this.waiting.delete(handle);
  }

  /** Resolves once no flush is running (pending ones are dropped: the store is closing). */
  async idle(): Promise<void> {
    this.waiting.clear();
    while (this.running) await this.running;
  }

  private start(handle: number): void {
    this.unflushed.delete(handle);
    this.waiting.delete(handle);
    this.running = this.hooks
      .flush(handle)
      .then(
        (done) => {
          if (done) this.flushesDone++;
        },
        (err) => this.hooks.failed(handle, err),
      )
      .finally(() => {
        this.running = undefined;
        const next = this.waiting.values().next();
        if (!next.done) this.start(next.value);
      });
  }
}
