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
//
// A new server, or one that has created more chunks than it deleted, has no such files: every
// new chunk paid for a create on its write's path (at every replica, ~120 us here while three
// chunkservers, the mount and the master share two cores; `tar -x` of 5,000 small files took
// 16.5 s instead of 14.2 s). So the pool also creates empty files ahead of need, up to a
// target, a few at a time and only while the store has no chunk I/O going on (startFilling).
import { closeSync, mkdirSync, openSync, readdirSync, renameSync, statSync, truncateSync, unlinkSync } from 'node:fs';
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
/** Empty files a chunkserver keeps ready for new chunks (one per new chunk at each replica). */
export const FILE_POOL_PREFILL = 8192;
/** Files created per step of a fill: a create of an empty file is some tens of µs. */
export const FILL_BATCH = 32;
/** Pause between the steps of a fill (requests that arrive meanwhile wait at most one step). */
export const FILL_STEP_MS = 5;
/** A fill waits this long after the store was last busy before its next step. */
export const FILL_IDLE_MS = 200;
/** How often a full pool checks whether it has fallen below its target. */
export const FILL_CHECK_MS = 1000;

export class FilePool {
  private readonly free: number[] = [];
  private next = 1;
  /** The next step of the fill (startFilling), if one is scheduled. */
  private filler: NodeJS.Timeout | undefined;
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

  /**
   * Creates empty files ahead of need until the pool holds `target` (at most its bound), a
   * batch at a time and only while `busyAgoMs()` (time since the store last did chunk I/O) is
   * at least FILL_IDLE_MS; fills again whenever takes bring it below the target. A create that
   * fails (disk full, out of inodes) pauses the fill until the next check. stopFilling() ends it.
   */
  startFilling(target: number, busyAgoMs: () => number, log: Logger): void {
    if (!Number.isSafeInteger(target) || target < 0) throw new RangeError(`file pool target must be a file count >= 0, got ${target}`);
    this.stopFilling();
    const goal = Math.min(target, this.max);
    let failed = false;
    const step = () => {
      let delay = FILL_CHECK_MS;
      if (this.free.length + this.joining < goal) {
        const ago = busyAgoMs();
        if (ago < FILL_IDLE_MS) {
          delay = FILL_IDLE_MS - ago;
        } else {
          try {
            for (let i = 0; i < FILL_BATCH && this.free.length + this.joining < goal; i++) this.createFree();
            delay = FILL_STEP_MS;
            failed = false;
          } catch (err) {
            if (!failed) log.warn({ dir: this.dir, err: (err as Error).message }, 'file pool: cannot create files ahead; trying again later');
            failed = true;
          }
        }
      }
      this.filler = setTimeout(step, delay).unref();
    };
    this.filler = setTimeout(step, 0).unref();
  }

  stopFilling(): void {
    clearTimeout(this.filler);
    this.filler = undefined;
  }

  /** One new empty file in the pool (throws when it cannot be created). */
  private createFree(): void {
    const n = this.next++;
    closeSync(openSync(join(this.dir, String(n)), 'wx', 0o644));
    this.free.push(n);
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
