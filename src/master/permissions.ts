// POSIX permission checks behind chunk access tokens. The master hands out a read token only
// to a caller who may read the file, a write token only to one who may write it. "May" is
// decided as POSIX does: at open. An Open (or a Create that opens) records what that open
// allowed for the (inode, client id) pair, so a file created 0444 and written through the
// descriptor that created it, or chmod-ed after open, keeps working for that opener; a caller
// without an open is checked against the file's mode bits now (root may read and write all).
import { GfsError } from '../common/errors.js';
import { type Cred, type Inode, inGroup, isDir } from './inode.js';

export const MAY_READ = 4;
export const MAY_WRITE = 2;
export const MAY_EXEC = 1;

const O_ACCMODE = 3;
const O_WRONLY = 1;
const O_RDWR = 2;
const O_TRUNC = 0o1000;

/** Access bits an open(2) with `flags` asks for. */
export function accessOfFlags(flags: number): number {
  const acc = flags & O_ACCMODE;
  let want = acc === O_WRONLY ? MAY_WRITE : acc === O_RDWR ? MAY_READ | MAY_WRITE : MAY_READ;
  if (flags & O_TRUNC) want |= MAY_WRITE;
  return want;
}

/** Does `cred` have every bit of `want` on `inode` (mode bits, owner/group/other, root bypass)? */
export function mayAccess(cred: Cred, inode: Inode, want: number): boolean {
  if (cred.uid === 0) {
    // Root reads and writes anything; it executes only what someone may execute.
    return !(want & MAY_EXEC) || isDir(inode) || (inode.mode & 0o111) !== 0;
  }
  let bits: number;
  if (cred.uid === inode.uid) bits = (inode.mode >> 6) & 7;
  else if (inGroup(cred, inode.gid)) bits = (inode.mode >> 3) & 7;
  else bits = inode.mode & 7;
  return (bits & want) === want;
}

export const eacces = (what: string) => new GfsError('EACCES', what);

/** What each client's opens of each inode allowed (not persistent, like the open table). */
export class AccessGrants {
  private readonly grants = new Map<number, Map<string, number>>();

  grant(ino: number, clientId: string, bits: number): void {
    if (!clientId || !bits) return;
    let per = this.grants.get(ino);
    if (!per) this.grants.set(ino, (per = new Map()));
    per.set(clientId, (per.get(clientId) ?? 0) | bits);
  }

  has(ino: number, clientId: string, bits: number): boolean {
    if (!clientId) return false;
    const got = this.grants.get(ino)?.get(clientId) ?? 0;
    return (got & bits) === bits;
  }

  /** The client closed its last handle of the inode. */
  drop(ino: number, clientId: string): void {
    const per = this.grants.get(ino);
    if (!per) return;
    per.delete(clientId);
    if (per.size === 0) this.grants.delete(ino);
  }

  get size(): number {
    return this.grants.size;
  }
}

/**
 * Checks data access to `inode` by (cred, clientId): granted by an open of this client, or
 * allowed by the mode bits now. Throws EACCES naming what was refused.
 */
export function checkIo(grants: AccessGrants, inode: Inode, cred: Cred, clientId: string, want: number): void {
  if (grants.has(inode.ino, clientId, want) || mayAccess(cred, inode, want)) return;
  const what = want & MAY_WRITE ? 'write' : 'read';
  throw eacces(`uid ${cred.uid} may not ${what} inode ${inode.ino} (mode 0${(inode.mode & 0o7777).toString(8)}, owner ${inode.uid}:${inode.gid})`);
}
