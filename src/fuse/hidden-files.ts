// Open-but-unlinked files under libfuse 2's high-level API.
//
// With `hard_remove`, libfuse forgets the path of an unlinked node and answers ENOENT itself
// to every path-based request on it, so fstat(2) of an open unlinked file fails (the kernel
// sends GETATTR without a handle). Without it, libfuse "hides" such a file: unlink of an open
// file becomes rename(path, ".fuse_hiddenXXXXXXXXXXXXXXXX") and the hidden name is unlinked at
// the last release. We take that route but never let the hidden name reach the master:
//  - rename(T, hidden) records hidden -> ino and schedules the real unlink of T on the master
//    (deferred by a few ms); T is shadowed (ENOENT, not listed) in this mount meanwhile.
//  - If libfuse hid T because a rename replaces it (rename(src, T) follows at once on the same
//    thread), the scheduled unlink is cancelled and the master's rename replaces T atomically.
//    A rename(x, T) by anyone else in that window has the same outcome as unlink-then-rename.
//  - Every other namespace mutation first settles pending unlinks, so ordering is preserved.
//  - Ops on the hidden name go to the inode (getattr, chmod, xattrs ...): fstat works and
//    shows st_nlink 0; unlink(hidden) at the last release only forgets the mapping (the
//    master frees the inode when its last open is released).
import type { Cred, GfsClientApi, Target } from '../client/api.js';
import { GfsError } from '../common/errors.js';
import type { Logger } from '../common/logger.js';
import type { AttrCache } from './attr-cache.js';
import { parentOf } from './attr-cache.js';

/** libfuse 2.9: snprintf(".fuse_hidden%08x%08x", nodeid, hidectr). */
const HIDDEN_RE = /\/\.fuse_hidden[0-9a-f]{16}$/;
/** How long the unlink of a hidden file waits for a replacing rename from the same request. */
const UNLINK_DEFER_MS = 25;

interface Pending {
  path: string;
  cred: Cred;
  timer: NodeJS.Timeout;
  run: () => Promise<void>;
  done?: Promise<void>;
}

export function isHiddenName(path: string): boolean {
  return HIDDEN_RE.test(path);
}

export class HiddenFiles {
  /** hidden path -> inode number. */
  private readonly hidden = new Map<string, number>();
  /** original path -> its scheduled unlink on the master. */
  private readonly pending = new Map<string, Pending>();

  constructor(
    private readonly client: GfsClientApi,
    private readonly attrs: AttrCache,
    private readonly log: Logger,
  ) {}

  /** The inode behind a hidden name, if `path` is one we made. */
  inoOf(path: string): number | undefined {
    return this.hidden.size > 0 ? this.hidden.get(path) : undefined;
  }

  /** The target to use on the master for `path` (an inode for hidden names). */
  target(path: string): Target {
    const ino = this.inoOf(path);
    if (ino !== undefined) return ino;
    if (this.isShadowed(path) || isHiddenName(path)) throw new GfsError('ENOENT', `no such file: ${path}`);
    return path;
  }

  /** Unlinked in this mount, unlink on the master still pending. */
  isShadowed(path: string): boolean {
    return this.pending.size > 0 && this.pending.has(path);
  }

  /** Names of `dir` that must not be listed (their unlink is pending). */
  shadowedIn(dir: string): Set<string> | undefined {
    if (this.pending.size === 0) return undefined;
    const out = new Set<string>();
    for (const p of this.pending.keys()) if (parentOf(p) === dir) out.add(p.slice(p.lastIndexOf('/') + 1));
    return out;
  }

  /** libfuse hides an open file: remember it and schedule the real unlink. */
  async hide(src: string, hiddenPath: string, cred: Cred): Promise<void> {
    await this.settle();
    const ino = this.attrs.inoOf(src) ?? (await this.client.getattr(src)).ino;
    this.hidden.set(hiddenPath, ino);
    const p: Pending = {
      path: src,
      cred,
      timer: setTimeout(() => void this.fire(p), UNLINK_DEFER_MS),
      run: async () => {
        await this.client.unlink(src, cred);
      },
    };
    this.pending.set(src, p);
    this.attrs.forgetPath(src);
    this.attrs.forgetParent(src);
  }

  /**
   * A rename to `dst` is about to run: if dst's unlink is pending (libfuse hid the open target
   * of this rename), cancel it so the master replaces dst atomically; settle all others.
   */
  async beforeRename(dst: string): Promise<void> {
    const mine = this.pending.get(dst);
    if (mine && !mine.done) {
      clearTimeout(mine.timer);
      this.pending.delete(dst);
    }
    await this.settle();
  }

  /** unlink(hidden) at the last release (or at unmount): just forget the name. */
  forget(hiddenPath: string): boolean {
    return this.hidden.delete(hiddenPath);
  }

  /** Runs every pending unlink now and waits for them. */
  async settle(): Promise<void> {
    if (this.pending.size === 0) return;
    await Promise.all([...this.pending.values()].map((p) => this.fire(p)));
  }

  private fire(p: Pending): Promise<void> {
    if (!p.done) {
      clearTimeout(p.timer);
      p.done = p
        .run()
        .catch((err: unknown) => {
          // The name may already be gone (another client); anything else is worth a line.
          if (!(err instanceof GfsError && err.code === 'ENOENT')) {
            this.log.warn({ path: p.path, err: (err as Error)?.message ?? String(err) }, 'deferred unlink failed');
          }
          this.attrs.forgetParent(p.path);
        })
        .finally(() => {
          if (this.pending.get(p.path) === p) this.pending.delete(p.path);
        });
    }
    return p.done;
  }

  async close(): Promise<void> {
    await this.settle();
  }
}
