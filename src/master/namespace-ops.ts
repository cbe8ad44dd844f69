// Path-based namespace operations: validate against the current tree (POSIX errors), decide
// inode numbers and times, then apply one mutation record. Each operation is synchronous from
// validation to apply, so it is atomic with respect to every other request.
import { GfsError, eexist, einval, eisdir, enoent, enotdir } from '../common/errors.js';
import { SYMLINK_MAX } from '../common/limits.js';
import type { MasterCore } from './core.js';
import {
  type Cred,
  type Inode,
  MKNOD_TYPES,
  S_IFDIR,
  S_IFMT,
  S_IFREG,
  S_ISGID,
  fileType,
  isDir,
  isLnk,
} from './inode.js';
import { indexAfter } from './namespace.js';
import { checkEntryName } from '../common/paths.js';
import { now } from './time.js';

export const READDIR_MAX = 4096;
export const RENAME_NOREPLACE = 1;
export const RENAME_EXCHANGE = 2;

export interface ReadDirResult {
  entries: Array<{ name: string; inode: Inode }>;
  more: boolean;
  dir: Inode;
}

/** Where an entry is: a path, or (when `parent` is non-zero) a name in a directory by inode. */
export interface EntryRef {
  path: string;
  parent?: number;
  name?: string;
}

export type Where = string | EntryRef;

/** How an entry appears in error messages. */
export function showEntry(at: Where): string {
  if (typeof at === 'string') return at;
  return at.parent ? `"${at.name}" in directory ${at.parent}` : at.path;
}

export class NamespaceOps {
  constructor(private readonly core: MasterCore) {}

  private get ns() {
    return this.core.ns;
  }

  /** The directory holding an entry and its name; null for "/" (as resolveParent). */
  locate(at: Where): { parent: Inode; name: string } | null {
    if (typeof at === 'string') return this.ns.resolveParent(at);
    if (!at.parent) return this.ns.resolveParent(at.path);
    const dir = this.ns.byIno(at.parent);
    if (!isDir(dir)) throw enotdir(showEntry(at));
    return { parent: dir, name: checkEntryName(at.name) };
  }

  /** The inode an entry names. */
  resolve(at: Where): Inode {
    if (typeof at === 'string') return this.ns.resolve(at);
    if (!at.parent) return this.ns.resolve(at.path);
    const loc = this.locate(at)!;
    const inode = this.ns.child(loc.parent, loc.name);
    if (!inode) throw enoent(showEntry(at));
    return inode;
  }

  getattr(path: string, ino: number, parent = 0, name = ''): Inode {
    if (!ino && parent) return this.resolve({ path, parent, name });
    return this.ns.target(path, ino);
  }

  /** Entries after `after` in name order, without "." and "..". Reads do not touch atime. */
  readdir(path: string, after: string, limit: number, ino = 0): ReadDirResult {
    const dir = this.ns.target(path, ino);
    if (!isDir(dir)) throw enotdir(path || `inode ${ino}`);
    const max = limit > 0 ? Math.min(limit, READDIR_MAX) : READDIR_MAX;
    const names = this.ns.sortedNames(dir);
    const start = after ? indexAfter(names, after) : 0;
    const page = names.slice(start, start + max);
    const entries = page.map((name) => ({ name, inode: this.ns.child(dir, name)! }));
    return { entries, more: start + page.length < names.length, dir };
  }

  mkdir(at: Where, mode: number, cred: Cred, umask: number): Inode {
    const { parent, name } = this.newName(at);
    const ino = this.ns.nextIno;
    const owner = ownerOf(parent, cred);
    let perm = mode & 0o7777 & ~umask;
    if (parent.mode & S_ISGID) perm |= S_ISGID;
    this.core.mutate({ op: 'mkdir', parent: parent.ino, name, ino, mode: perm, ...owner, goal: parent.goal, time: now() });
    return this.ns.get(ino)!;
  }

  /** Non-exclusive create of an existing name opens it (EISDIR for a directory). */
  create(at: Where, mode: number, cred: Cred, umask: number, exclusive: boolean): Inode {
    const loc = this.locate(at);
    if (!loc) throw exclusive ? eexist(showEntry(at)) : eisdir(showEntry(at));
    const existing = this.ns.child(loc.parent, loc.name);
    if (existing) {
      if (exclusive) throw eexist(showEntry(at));
      if (isDir(existing)) throw eisdir(showEntry(at));
      return existing;
    }
    return this.makeNode(loc.parent, loc.name, S_IFREG | (mode & 0o7777 & ~umask), 0, cred);
  }

  /** FIFOs, devices, sockets, and regular files (type 0 means regular, as in mknod(2)). */
  mknod(at: Where, mode: number, rdev: number, cred: Cred, umask: number): Inode {
    const type = fileType(mode) || S_IFREG;
    if (!MKNOD_TYPES.has(type)) throw einval(`mknod cannot create file type 0${type.toString(8)}: ${showEntry(at)}`);
    if (!Number.isSafeInteger(rdev) || rdev < 0) throw einval(`bad rdev ${rdev}`);
    const { parent, name } = this.newName(at);
    return this.makeNode(parent, name, type | (mode & 0o7777 & ~umask), type === S_IFREG ? 0 : rdev, cred);
  }

  symlink(target: string, at: Where, cred: Cred): Inode {
    if (target === '') throw enoent('empty symlink target');
    if (Buffer.byteLength(target) > SYMLINK_MAX) throw new GfsError('ENAMETOOLONG', `symlink target longer than ${SYMLINK_MAX} bytes`);
    if (target.includes('\0')) throw einval('symlink target contains a NUL byte');
    const { parent, name } = this.newName(at);
    const ino = this.ns.nextIno;
    this.core.mutate({ op: 'symlink', parent: parent.ino, name, ino, target, ...ownerOf(parent, cred), goal: parent.goal, time: now() });
    return this.ns.get(ino)!;
  }

  /** `src`: the existing file, by path or (srcIno non-zero) by inode. */
  link(src: string, dst: Where, srcIno = 0): Inode {
    const inode = this.ns.target(src, srcIno);
    if (isDir(inode)) throw new GfsError('EPERM', `hard link to a directory: ${src || `inode ${srcIno}`}`);
    const { parent, name } = this.newName(dst);
    this.core.mutate({ op: 'link', parent: parent.ino, name, ino: inode.ino, time: now() });
    return inode;
  }

  readlink(path: string, ino: number): string {
    const inode = this.ns.target(path, ino);
    if (!isLnk(inode)) throw einval(`not a symlink: ${path || ino}`);
    return inode.target ?? '';
  }

  /**
   * Returns the directory and, when it lives on (other names, still open), the inode.
   * `expectIno`: unlink only if the name still holds that inode (0: whatever it holds).
   */
  unlink(at: Where, expectIno = 0): { parent: Inode; survivor?: Inode } {
    const path = showEntry(at);
    const loc = this.locate(at);
    if (!loc) throw eisdir(path);
    const inode = this.ns.child(loc.parent, loc.name);
    if (!inode) throw enoent(path);
    if (expectIno && inode.ino !== expectIno) throw new GfsError('ENOENT', `${path} is no longer inode ${expectIno} (it is ${inode.ino} now)`);
    if (isDir(inode)) throw eisdir(path);
    const free = inode.nlink <= 1 && !this.core.opens.isOpen(inode.ino);
    this.core.mutate({ op: 'unlink', parent: loc.parent.ino, name: loc.name, free, time: now() });
    this.core.log.debug({ path, ino: inode.ino, free }, 'unlink');
    return { parent: loc.parent, survivor: free ? undefined : inode };
  }

  /** Returns the directory that held it. */
  rmdir(at: Where): Inode {
    const path = showEntry(at);
    const loc = this.locate(at);
    if (!loc) throw new GfsError('EBUSY', 'cannot remove the root directory');
    const inode = this.ns.child(loc.parent, loc.name);
    if (!inode) throw enoent(path);
    if (!isDir(inode)) throw enotdir(path);
    if (inode.entries!.size) throw new GfsError('ENOTEMPTY', `directory not empty: ${path}`);
    this.core.mutate({ op: 'rmdir', parent: loc.parent.ino, name: loc.name, time: now() });
    return loc.parent;
  }

  /** Returns both directories and the moved inode. */
  rename(srcAt: Where, dstAt: Where, flags: number): { srcParent: Inode; dstParent: Inode; moved: Inode } {
    if (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE)) throw einval(`unknown rename flags ${flags}`);
    if (flags === (RENAME_NOREPLACE | RENAME_EXCHANGE)) throw einval('RENAME_NOREPLACE and RENAME_EXCHANGE together');
    const src = showEntry(srcAt);
    const dst = showEntry(dstAt);
    const from = this.locate(srcAt);
    const to = this.locate(dstAt);
    if (!from || !to) throw new GfsError('EBUSY', 'cannot rename the root directory');
    const moved = this.ns.child(from.parent, from.name);
    if (!moved) throw enoent(src);
    const target = this.ns.child(to.parent, to.name);
    const exchange = (flags & RENAME_EXCHANGE) !== 0;
    if (target && moved.ino === target.ino) return { srcParent: from.parent, dstParent: to.parent, moved }; // same inode: POSIX says do nothing
    // A directory cannot move into its own subtree.
    if (isDir(moved) && this.ns.isAncestorOrSelf(moved, to.parent)) {
      throw einval(`cannot move a directory into itself: ${src} -> ${dst}`);
    }
    let free = false;
    if (exchange) {
      if (!target) throw enoent(dst);
      if (isDir(target) && this.ns.isAncestorOrSelf(target, from.parent)) {
        throw einval(`cannot move a directory into itself: ${dst} -> ${src}`);
      }
    } else if (target) {
      if (flags & RENAME_NOREPLACE) throw eexist(dst);
      if (isDir(moved) && !isDir(target)) throw enotdir(dst);
      if (!isDir(moved) && isDir(target)) throw eisdir(dst);
      if (isDir(target) && target.entries!.size) throw new GfsError('ENOTEMPTY', `directory not empty: ${dst}`);
      free = isDir(target) || (target.nlink <= 1 && !this.core.opens.isOpen(target.ino));
    }
    this.core.mutate({
      op: 'rename',
      srcParent: from.parent.ino,
      srcName: from.name,
      dstParent: to.parent.ino,
      dstName: to.name,
      exchange,
      free,
      time: now(),
    });
    return { srcParent: from.parent, dstParent: to.parent, moved };
  }

  /** Where a new entry goes; EEXIST when the name is taken (or is "/"). */
  private newName(at: Where): { parent: Inode; name: string } {
    const loc = this.locate(at);
    if (!loc || loc.parent.entries!.has(loc.name)) throw eexist(showEntry(at));
    return loc;
  }

  private makeNode(parent: Inode, name: string, mode: number, rdev: number, cred: Cred): Inode {
    const ino = this.ns.nextIno;
    if ((mode & S_IFMT) === S_IFDIR) throw einval('makeNode cannot make directories');
    this.core.mutate({ op: 'mknod', parent: parent.ino, name, ino, mode, rdev, ...ownerOf(parent, cred), goal: parent.goal, time: now() });
    return this.ns.get(ino)!;
  }
}

/** Owner of a new inode: the caller, with the directory's group when it is setgid. */
function ownerOf(parent: Inode, cred: Cred): { uid: number; gid: number } {
  return { uid: cred.uid, gid: parent.mode & S_ISGID ? parent.gid : cred.gid };
}
