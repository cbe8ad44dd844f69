// Unlinks answered before the master has applied them, sent to it in batches (UnlinkBatch).
// `rm -rf` of small files otherwise pays a master round trip per file on top of the FUSE one,
// and a call per name costs the mount and the master more than the unlink itself. An unlink
// qualifies only when this mount knows everything the answer depends on: the name is in a
// fresh listing, the inode's attrs are fresh, it is not a directory, has no other link (the
// survivor's nlink would be unknown) and is not open here. The kernel has already checked the permissions (default_permissions)
// against those same attrs.
//
// Everything that could tell the difference waits for the unlinks under way in the directories
// it names (afterUnlinks): a create of the same name, rmdir of the directory, a rename into or
// out of it, a change of its attrs, a listing of it. Its mtime and ctime move in the cache at
// once, as the master will move them (link-ops.ts). The master may still refuse one
// (another client changed the directory within the attr timeout, as it could have before our
// listing lapsed): that is logged and the listing dropped, so the name shows again.
import type { UnlinkBatchEntry } from '../client/api.js';
import type { Logger } from '../common/logger.js';
import type { LowLevelOps } from './lowlevel.js';

/** Unlinks queued or under way at once; the next waits for room (bounds memory and master load). */
export const MAX_UNLINKS_PENDING = 1024;
/** Names sent in one UnlinkBatch call at most. */
export const UNLINK_BATCH_MAX = 256;
/**
 * Batch calls under way at once. Names that arrive while they are collect for the next call,
 * so an `rm -rf` sends a few calls of many names instead of one call per name, and a lone `rm`
 * is sent at once.
 */
export const UNLINK_BATCHES_IN_FLIGHT = 2;

/** Applies unlinks of names on the master; one result per entry: undefined = done, else why not. */
export type SendUnlinks = (entries: UnlinkBatchEntry[]) => Promise<Array<Error | undefined>>;

interface Queued {
  parent: number;
  name: string;
  /** The inode the name held here: the master leaves the name alone if it holds another by then. */
  ino: number;
  onFail: () => void;
  done: () => void;
}

export class UnlinkQueue {
  private readonly byDir = new Map<number, Set<Promise<void>>>();
  private queued: Queued[] = [];
  private count = 0;
  /** Unlinks queued or under way (at most MAX_UNLINKS_PENDING); `count` also has those waiting for room. */
  private admitted = 0;
  private batches = 0;
  private sendScheduled = false;
  private readonly roomWaiters: Array<() => void> = [];
  failures = 0;

  constructor(
    private readonly send: SendUnlinks,
    private readonly log: Logger,
  ) {}

  /** Unlinks not yet settled: queued, under way, or waiting for room in the queue. */
  get pending(): number {
    return this.count;
  }

  /**
   * Queues the master's unlink of `name` in `dir`; resolves once it is queued (not applied).
   * It counts as under way in `dir` from the call on, even while it waits for room: the caller
   * has already taken the name out of the cache, so a listing or an op on `dir` must wait for it.
   */
  async start(dir: number, name: string, ino: number, onFail: () => void): Promise<void> {
    this.count++;
    let set = this.byDir.get(dir);
    if (!set) {
      set = new Set();
      this.byDir.set(dir, set);
    }
    const s = set;
    let done!: () => void;
    const p = new Promise<void>((resolve) => (done = resolve)).finally(() => {
      s.delete(p);
      if (s.size === 0 && this.byDir.get(dir) === s) this.byDir.delete(dir);
      this.count--;
      this.admitted--;
      this.roomWaiters.shift()?.();
    });
    s.add(p);
    while (this.admitted >= MAX_UNLINKS_PENDING) await new Promise<void>((resolve) => this.roomWaiters.push(resolve));
    this.admitted++;
    this.queued.push({ parent: dir, name, ino, onFail, done });
    this.schedule();
  }

  /** Sends what is queued once the current turn is over (names of this turn go together). */
  private schedule(): void {
    if (this.sendScheduled || this.batches >= UNLINK_BATCHES_IN_FLIGHT || this.queued.length === 0) return;
    this.sendScheduled = true;
    setImmediate(() => {
      this.sendScheduled = false;
      void this.sendBatch();
    });
  }

  private async sendBatch(): Promise<void> {
    if (this.batches >= UNLINK_BATCHES_IN_FLIGHT || this.queued.length === 0) return;
    const batch = this.queued.splice(0, UNLINK_BATCH_MAX);
    this.batches++;
    this.schedule(); // a full batch left more behind: another call may go beside this one
    let results: Array<Error | undefined>;
    try {
      results = await this.send(batch.map(({ parent, name, ino }) => ({ parent, name, ino })));
    } catch (err) {
      results = batch.map(() => err as Error);
    }
    for (let i = 0; i < batch.length; i++) {
      const q = batch[i]!;
      const err = results[i];
      if (err) {
        this.failures++;
        q.onFail();
        this.log.warn({ dir: q.parent, name: q.name, err: err.message ?? String(err) }, 'background unlink refused by the master');
      }
      q.done();
    }
    this.batches--;
    this.schedule();
  }

  /** Resolves once the unlinks under way in these directories are settled. */
  async settled(dirs: ReadonlyArray<number | undefined>): Promise<void> {
    if (this.count === 0) return;
    const ps: Promise<void>[] = [];
    for (const d of dirs) {
      const s = d === undefined ? undefined : this.byDir.get(d);
      if (s) ps.push(...s);
    }
    if (ps.length > 0) await Promise.all(ps);
  }

  /** Every unlink under way (rmdir, rename, unmount). */
  async all(): Promise<void> {
    if (this.count === 0) return;
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
