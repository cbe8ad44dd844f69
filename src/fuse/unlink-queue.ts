// Unlinks answered before the master has applied them. `rm -rf` of small files otherwise pays
// a master round trip per file on top of the FUSE one. An unlink qualifies only when this mount
// knows everything the answer depends on: the name is in a fresh listing, the inode's attrs
// are fresh, it is not a directory, has no other link (the survivor's nlink would be unknown)
// and is not open here. The kernel has already checked the permissions (default_permissions)
// against those same attrs.
//
// Everything that could tell the difference waits for the unlinks under way in the directories
// it names (afterUnlinks): a create of the same name, rmdir of the directory, a rename into or
// out of it, a change of its attrs, a listing of it. Its mtime and ctime move in the cache at
// once, as the master will move them (link-ops.ts). The master may still refuse one
// (another client changed the directory within the attr timeout, as it could have before our
// listing lapsed): that is logged and the listing dropped, so the name shows again.
import type { Logger } from '../common/logger.js';
import type { LowLevelOps } from './lowlevel.js';

/** Unlinks under way at once; the next waits for one to finish (bounds memory and master load). */
export const MAX_UNLINKS_IN_FLIGHT = 128;

export class UnlinkQueue {
  private readonly byDir = new Map<number, Set<Promise<void>>>();
  private inFlight = 0;
  private readonly slotWaiters: Array<() => void> = [];
  failures = 0;

  constructor(private readonly log: Logger) {}

  get pending(): number {
    return this.inFlight;
  }

  /** Starts `run` (the master's unlink of a name in `dir`) in the background. */
  async start(dir: number, name: string, run: () => Promise<void>, onFail: () => void): Promise<void> {
    while (this.inFlight >= MAX_UNLINKS_IN_FLIGHT) await new Promise<void>((resolve) => this.slotWaiters.push(resolve));
    this.inFlight++;
    let set = this.byDir.get(dir);
    if (!set) {
      set = new Set();
      this.byDir.set(dir, set);
    }
    const s = set;
    const p: Promise<void> = run()
      .catch((err: unknown) => {
        this.failures++;
        onFail();
        this.log.warn({ dir, name, err: (err as Error)?.message ?? String(err) }, 'background unlink refused by the master');
      })
      .finally(() => {
        s.delete(p);
        if (s.size === 0 && this.byDir.get(dir) === s) this.byDir.delete(dir);
        this.inFlight--;
        this.slotWaiters.shift()?.();
      });
    s.add(p);
  }

  /** Resolves once the unlinks under way in these directories are settled. */
  async settled(dirs: ReadonlyArray<number | undefined>): Promise<void> {
    if (this.inFlight === 0) return;
    const ps: Promise<void>[] = [];
    for (const d of dirs) {
      const s = d === undefined ? undefined : this.byDir.get(d);
      if (s) ps.push(...s);
    }
    if (ps.length > 0) await Promise.all(ps);
  }

  /** Every unlink under way (rmdir, rename, unmount). */
  async all(): Promise<void> {
    if (this.inFlight === 0) return;
    await Promise.all([...this.byDir.values()].flatMap((s) => [...s]));
  }
}

/** The ops, each waiting first for the background unlinks in the directories it names. */
export function afterUnlinks(ops: LowLevelOps, q: UnlinkQueue): LowLevelOps {
  // Nothing pending (nearly always): the op runs as it is, with no extra await on its path.
  const after = <T>(dirs: Array<number | undefined> | 'all', run: () => Promise<T>): Promise<T> =>
    q.pending === 0 ? run() : (dirs === 'all' ? q.all() : q.settled(dirs)).then(run);
  return {
    ...ops,
    lookup: (c, parent, name) => after([parent], () => ops.lookup(c, parent, name)),
    setattr: (c, ino, set, fh) => after([ino], () => ops.setattr(c, ino, set, fh)),
    mknod: (c, parent, name, mode, rdev) => after([parent], () => ops.mknod(c, parent, name, mode, rdev)),
    mkdir: (c, parent, name, mode) => after([parent], () => ops.mkdir(c, parent, name, mode)),
    // Emptiness is checked on the master: every unlink under way goes first (the directory's
    // own entry may have lapsed from the listing, and a rename may replace an empty one).
    rmdir: (c, parent, name) => after('all', () => ops.rmdir(c, parent, name)),
    symlink: (c, parent, name, target) => after([parent], () => ops.symlink(c, parent, name, target)),
    rename: (c, parent, name, newParent, newName) => after('all', () => ops.rename(c, parent, name, newParent, newName)),
    link: (c, ino, newParent, newName) => after([newParent], () => ops.link(c, ino, newParent, newName)),
    create: (c, parent, name, mode, flags) => after([parent], () => ops.create(c, parent, name, mode, flags)),
    opendir: (c, ino) => after([ino], () => ops.opendir(c, ino)),
    fsyncdir: (c, ino, fh) => after([ino], () => ops.fsyncdir(c, ino, fh)),
  };
}
