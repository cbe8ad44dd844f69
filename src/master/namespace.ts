// The inode tree and its read-only path API. Every change goes through MasterState.apply
// (mutations.ts); this file only creates the root and answers "what does this path name".
import { GfsError, enoent, enotdir } from '../common/errors.js';
import { MAX_ID } from '../common/limits.js';
import { splitPath } from '../common/paths.js';
import { type Inode, ROOT_INO, ROOT_MODE, isDir } from './inode.js';
import { type Time, copyTime } from './time.js';

export class Namespace {
  readonly inodes = new Map<number, Inode>();
  /** Next inode number to hand out (carried in mutation records, advanced by apply). */
  nextIno = ROOT_INO + 1;

  constructor(rootTime: Time, goal: number) {
    this.inodes.set(ROOT_INO, newInode(ROOT_INO, ROOT_MODE, 0, 0, rootTime, goal));
  }

  get root(): Inode {
    return this.inodes.get(ROOT_INO)!;
  }

  get(ino: number): Inode | undefined {
    return this.inodes.get(ino);
  }

  /** The inode numbered `ino`, also when unlinked but still open; ENOENT otherwise. */
  byIno(ino: number): Inode {
    if (!Number.isSafeInteger(ino) || ino <= 0 || ino > MAX_ID) throw new GfsError('ENOENT', `bad inode number ${ino}`);
    const inode = this.inodes.get(ino);
    if (!inode) throw new GfsError('ENOENT', `no inode ${ino}`);
    return inode;
  }

  /** Resolves an absolute path (symlinks are not followed: the kernel resolves them). */
  resolve(path: string): Inode {
    return this.walk(splitPath(path), path);
  }

  /** ino wins when non-zero, as in the wire requests. */
  target(path: string, ino: number): Inode {
    return ino ? this.byIno(ino) : this.resolve(path);
  }

  /**
   * The directory that holds the last component of `path`, and that name; null for "/".
   * The entry itself may or may not exist.
   */
  resolveParent(path: string): { parent: Inode; name: string } | null {
    const parts = splitPath(path);
    const name = parts.pop();
    if (name === undefined) return null;
    const parent = this.walk(parts, path);
    if (!isDir(parent)) throw enotdir(path);
    return { parent, name };
  }

  child(dir: Inode, name: string): Inode | undefined {
    const ino = dir.entries?.get(name);
    return ino === undefined ? undefined : this.inodes.get(ino);
  }

  /** True when directory `a` is `b` or one of b's ancestors. */
  isAncestorOrSelf(a: Inode, b: Inode): boolean {
    for (let cur: Inode | undefined = b; cur; ) {
      if (cur.ino === a.ino) return true;
      if (cur.ino === ROOT_INO || cur.parent === undefined) return false;
      cur = this.inodes.get(cur.parent);
    }
    return false;
  }

  /** Entry names in a stable sorted order (cached until the directory changes). */
  sortedNames(dir: Inode): string[] {
    if (!dir.sorted) dir.sorted = [...dir.entries!.keys()].sort(compareNames);
    return dir.sorted;
  }

  private walk(parts: string[], path: string): Inode {
    let cur = this.root;
    for (const name of parts) {
      if (!isDir(cur)) throw enotdir(path);
      const next = this.child(cur, name);
      if (!next) throw enoent(path);
      cur = next;
    }
    return cur;
  }
}

export function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** First index in sorted `names` whose name is strictly after `after`. */
export function indexAfter(names: string[], after: string): number {
  let lo = 0;
  let hi = names.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (names[mid]! <= after) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export function newInode(ino: number, mode: number, uid: number, gid: number, time: Time, goal: number): Inode {
  const inode: Inode = {
    ino,
    mode,
    uid,
    gid,
    size: 0,
    rdev: 0,
    nlink: 1,
    atime: copyTime(time),
    mtime: copyTime(time),
    ctime: copyTime(time),
    goal,
    xattrs: new Map(),
  };
  if (isDir(inode)) {
    inode.entries = new Map();
    inode.nlink = 2;
  }
  return inode;
}
