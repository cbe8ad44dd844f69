// Empty files kept for reuse as chunk and meta files. Creating a file allocates an inode and
// deleting one frees it; on ext4 without a journal the allocator then skips every inode freed
// in the last few minutes, re-scanning them on each later create, so after an `rm -rf` of many
// small files a chunk's two creates took ~300 us each, most of a small write's time at every
// replica. A rename costs ~15 us: a deleted chunk's files are emptied and moved here, and a new
// chunk takes them back, so a steady small-file workload allocates and frees no inodes at all.
//
// Files are named by a counter. A file is moved here before it is emptied, so a crash in
// between leaves a non-empty pool file (emptied at the next start), never a chunk name
// pointing at an emptied file. Calls on small files are synchronous: each is a syscall or two
// of directory work, cheaper than a hand-off to the thread pool. Emptying a large file frees
// its blocks, which is not cheap: that goes to a libuv worker, one file at a time.
import { mkdirSync, readdirSync, renameSync, statSync, truncateSync, unlinkSync } from 'node:fs';
import { truncate, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { MiB } from '../common/limits.js';
import type { Logger } from '../common/logger.js';

/** Free files kept at most (an empty file costs an inode and a directory entry). */
export const FILE_POOL_MAX = 16_384;
/**
 * Files up to this size are emptied (or removed) on the event loop. Freeing a written 64 MiB
 * chunk's blocks took 22 ms here, and hundreds behind heavy writeback: dropping a large file's
 * chunks during `fio` writes stalled every chunkserver's event loop for 0.2-1.3 s.
 */
export const EMPTY_SYNC_MAX_BYTES = 1 * MiB;

export class FilePool {
  private readonly free: number[] = [];
  private next = 1;
  /** Large files being emptied or removed on a worker, one after another. */
  private emptying: Promise<void> = Promise.resolve();
  /** Of those, the ones that join `free` when emptied (they count against the bound). */
  private joining = 0;

  private constructor(
    readonly dir: string,
    private readonly max: number,
  ) {}

  /** Opens the pool in `dir` (created if missing), emptying files a crash left with data. */
  static open(dir: string, log: Logger, max = FILE_POOL_MAX): FilePool {
    const pool = new FilePool(dir, max);
    mkdirSync(dir, { recursive: true });
    let emptied = 0;
    for (const name of readdirSync(dir)) {
      const n = /^\d+$/.test(name) ? Number(name) : NaN;
      const path = join(dir, name);
      if (!Number.isSafeInteger(n) || pool.free.length >= max) {
        unlinkQuietly(path);
        continue;
      }
      try {
        if (statSync(path).size > 0) {
          truncateSync(path, 0);
          emptied++;
        }
        pool.free.push(n);
        pool.next = Math.max(pool.next, n + 1);
      } catch {
        unlinkQuietly(path);
      }
    }
    if (emptied > 0) log.info({ emptied }, 'file pool: emptied files left by an interrupted delete');
    return pool;
  }

  get size(): number {
    return this.free.length;
  }

  /** Moves a free (empty) file to `path`; false when none is left (the caller creates one). */
  take(path: string): boolean {
    for (;;) {
      const n = this.free.pop();
      if (n === undefined) return false;
      try {
        renameSync(join(this.dir, String(n)), path);
        return true;
      } catch {
        // Gone from under us (removed by hand): try the next one.
      }
    }
  }

  /**
   * Keeps the file at `path` (of about `bytes`) for reuse, emptied; removes it instead when the
   * pool is full or the move fails. Missing files are ignored (a delete wants them gone). A
   * large file is renamed at once and emptied in the background (`idle()` waits for that).
   */
  recycle(path: string, bytes = 0): void {
    const large = bytes > EMPTY_SYNC_MAX_BYTES;
    if (this.free.length + this.joining >= this.max) return this.remove(path, large);
    const n = this.next++;
    const to = join(this.dir, String(n));
    try {
      renameSync(path, to);
    } catch {
      return this.remove(path, large);
    }
    if (large) {
      this.joining++;
      this.later(async () => {
        try {
          await truncate(to, 0);
          this.free.push(n);
        } catch {
          await unlink(to);
        } finally {
          this.joining--;
        }
      });
      return;
    }
    try {
      truncateSync(to, 0);
      this.free.push(n);
    } catch {
      unlinkQuietly(to);
    }
  }

  /** Resolves once the large files handed over so far are emptied or removed. */
  idle(): Promise<void> {
    return this.emptying;
  }

  private remove(path: string, large: boolean): void {
    if (large) this.later(() => unlink(path));
    else unlinkQuietly(path);
  }

  /** Queues work on a large file; failures leave it to the next start's scan (open()). */
  private later(work: () => Promise<unknown>): void {
    this.emptying = this.emptying.then(work).then(
      () => undefined,
      () => undefined,
    );
  }
}

/** Removes a file; missing is fine, and a file that cannot be removed is left to the next scan. */
export function unlinkQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    /* see above */
  }
}
