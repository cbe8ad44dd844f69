// Per-key reader/writer locks. Chunk reads share a chunk; mutations (write, truncate, set
// version, delete) hold it alone, so a reader never checks a block while a write is half done.
// Waiting writers block new readers (no writer starvation). Entries vanish when idle.

interface Waiter {
  exclusive: boolean;
  resolve: () => void;
}

class RwLock {
  readers = 0;
  writer = false;
  readonly queue: Waiter[] = [];

  get idle(): boolean {
    return this.readers === 0 && !this.writer && this.queue.length === 0;
  }

  acquire(exclusive: boolean): Promise<void> | undefined {
    if (this.queue.length === 0 && !this.writer && (!exclusive || this.readers === 0)) {
      if (exclusive) this.writer = true;
      else this.readers++;
      return undefined;
    }
    return new Promise((resolve) => this.queue.push({ exclusive, resolve }));
  }

  release(exclusive: boolean): void {
    if (exclusive) this.writer = false;
    else this.readers--;
    while (this.queue.length > 0 && !this.writer) {
      const next = this.queue[0]!;
      if (next.exclusive) {
        if (this.readers > 0) break;
        this.writer = true;
      } else {
        this.readers++;
      }
      this.queue.shift();
      next.resolve();
    }
  }
}

export class KeyedRwLock<K> {
  private readonly locks = new Map<K, RwLock>();

  shared<T>(key: K, fn: () => Promise<T>): Promise<T> {
    return this.run(key, false, fn);
  }

  exclusive<T>(key: K, fn: () => Promise<T>): Promise<T> {
    return this.run(key, true, fn);
  }

  /** Keys currently held or waited for. */
  get size(): number {
    return this.locks.size;
  }

  private async run<T>(key: K, exclusive: boolean, fn: () => Promise<T>): Promise<T> {
    let lock = this.locks.get(key);
    if (!lock) {
      lock = new RwLock();
      this.locks.set(key, lock);
    }
    const wait = lock.acquire(exclusive);
    if (wait) await wait;
    try {
      return await fn();
    } finally {
      lock.release(exclusive);
      if (lock.idle) this.locks.delete(key);
    }
  }
}
