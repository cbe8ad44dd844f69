// Serial order of mutations per chunk. Over gRPC, the primary takes the chunk's turn, numbers
// the write, applies it and forwards it to the secondaries before the next write of that chunk
// starts; secondaries apply ApplyWrites under the same kind of turn, in arrival order. Over the
// data channel (data-server.ts) writes are pipelined instead: the primary numbers them (next)
// and hands them, in that order, to its own disk queue and to one ordered connection per
// secondary, so every replica applies them in the same order without waiting for each other.
import { LRUCache } from 'lru-cache';
import { KeyedRwLock } from './chunk-locks.js';

/** Chunks whose last serial number is remembered. */
const SERIALS_MAX = 65_536;

export class WriteOrder {
  private readonly turns = new KeyedRwLock<number>();
  private readonly serials = new LRUCache<number, number>({ max: SERIALS_MAX });

  /** Runs fn alone for this chunk with the next serial number. */
  primary<T>(handle: number, fn: (serial: number) => Promise<T>): Promise<T> {
    return this.turns.exclusive(handle, () => {
      const serial = (this.serials.get(handle) ?? 0) + 1;
      this.serials.set(handle, serial);
      return fn(serial);
    });
  }

  /** The next serial number of a chunk's pipelined writes (data channel). */
  next(handle: number): number {
    const serial = (this.serials.get(handle) ?? 0) + 1;
    this.serials.set(handle, serial);
    return serial;
  }

  /** Runs a secondary's apply alone for this chunk; remembers the primary's serial. */
  secondary<T>(handle: number, serial: number, fn: () => Promise<T>): Promise<T> {
    return this.turns.exclusive(handle, async () => {
      const r = await fn();
      if (serial > (this.serials.get(handle) ?? 0)) this.serials.set(handle, serial);
      return r;
    });
  }

  forget(handle: number): void {
    this.serials.delete(handle);
  }

  /** Chunks with a write running or waiting. */
  get busy(): number {
    return this.turns.size;
  }
}
