// Attribute operations: setattr (chmod, chown, truncate, utimens), extended attributes, and
// open/release bookkeeping (an unlinked file lives while open).
import { GfsError, einval, eisdir } from '../common/errors.js';
import { MAX_FILE_SIZE, XATTR_NAME_MAX, XATTR_VALUE_MAX } from '../common/limits.js';
import type { ChunkOps } from './chunk-ops.js';
import type { MasterCore } from './core.js';
import { type Cred, type Inode, S_ISGID, S_ISUID, S_IXGRP, inGroup, isDir } from './inode.js';
import type { Mutation } from './mutations.js';
import { MAY_WRITE, mayAccess } from './permissions.js';
import { type Time, now } from './time.js';

export const SETATTR_MODE = 1;
export const SETATTR_UID = 2;
export const SETATTR_GID = 4;
export const SETATTR_SIZE = 8;
export const XATTR_CREATE = 1;
export const XATTR_REPLACE = 2;

export type TimeArg = 'now' | Time;

export interface SetAttrArgs {
  path: string;
  ino: number;
  cred: Cred;
  valid: number;
  mode?: number;
  uid?: number;
  gid?: number;
  size?: number;
  atime?: TimeArg;
  mtime?: TimeArg;
}

type SetAttrRecord = Extract<Mutation, { op: 'setattr' }>;

interface SetAttrPlan {
  record: SetAttrRecord;
  /** A shrink that ends inside an existing chunk: that chunk is cut to `length`. */
  partial?: { handle: number; length: number };
}

const MAX_SETATTR_ATTEMPTS = 5;

export class AttrOps {
  constructor(
    private readonly core: MasterCore,
    private readonly chunkOps: ChunkOps,
  ) {}

  async setattr(args: SetAttrArgs): Promise<Inode> {
    for (let attempt = 0; attempt < MAX_SETATTR_ATTEMPTS; attempt++) {
      const inode = this.core.ns.target(args.path, args.ino);
      const plan = this.plan(inode, args);
      if (!plan) return inode;
      if (!plan.partial) {
        this.core.mutate(plan.record);
        return inode;
      }
      // Cutting a chunk: hold its lock so no lease grant interleaves with the version bump.
      const { handle } = plan.partial;
      const done = await this.core.leases.withLock(handle, async () => {
        const current = this.core.ns.target(args.path, args.ino);
        const again = this.plan(current, args);
        if (again?.partial?.handle !== handle) return undefined; // the file changed: plan anew
        // Cut the replicas first, then log size + version (see truncateLocked): a crash in
        // between leaves the old size with replicas the master adopts; the retry cuts again.
        await this.chunkOps.truncateLocked(handle, again.partial.length);
        // The awaits were interleaving points: validate again against the file as it is now.
        const after = this.core.ns.target(args.path, args.ino);
        const final = this.plan(after, args);
        if (final) this.core.mutate(final.record);
        this.core.log.debug({ ino: after.ino, handle, size: final?.record.size }, 'truncated');
        return after;
      });
      if (done) return done;
    }
    throw new GfsError('EAGAIN', 'file kept changing during truncate; try again');
  }

  /** Validates a setattr against `inode`; undefined when there is nothing to change. */
  private plan(inode: Inode, a: SetAttrArgs): SetAttrPlan | undefined {
    if (a.valid & ~(SETATTR_MODE | SETATTR_UID | SETATTR_GID | SETATTR_SIZE)) throw einval(`unknown setattr bits ${a.valid}`);
    const { cred } = a;
    const root = cred.uid === 0;
    const owner = root || cred.uid === inode.uid;
    const time = now();
    const record: SetAttrRecord = { op: 'setattr', ino: inode.ino, time };
    let changed = false;
    let mode = inode.mode & 0o7777;
    if (a.valid & SETATTR_MODE) {
      const want = (a.mode ?? 0) & 0o7777;
      // The kernel clears setuid/setgid itself before a write or truncate by anyone without
      // CAP_FSETID, as a chmod made with the writer's cred: a writer may drop just those bits.
      const killsPrivOnly = (mode & ~want & ~(S_ISUID | S_ISGID)) === 0 && (want & ~mode) === 0;
      if (!owner && !(killsPrivOnly && mayAccess(cred, inode, MAY_WRITE))) {
        throw new GfsError('EPERM', `only the owner may change the mode of inode ${inode.ino}`);
      }
      mode = want;
      // As Linux: a non-member of the file's group cannot set its setgid bit.
      if (!root && !isDir(inode) && !inGroup(cred, inode.gid)) mode &= ~S_ISGID;
      record.mode = mode;
      changed = true;
    }
    if (a.valid & SETATTR_UID) {
      const uid = checkId(a.uid, 'uid');
      if (!root && !(cred.uid === inode.uid && uid === inode.uid)) throw new GfsError('EPERM', 'only root may change the owner');
      record.uid = uid;
      changed = true;
    }
    if (a.valid & SETATTR_GID) {
      const gid = checkId(a.gid, 'gid');
      if (!root && !(cred.uid === inode.uid && (gid === inode.gid || inGroup(cred, gid)))) {
        throw new GfsError('EPERM', `not allowed to change the group to ${gid}`);
      }
      record.gid = gid;
      changed = true;
    }
    if ((a.valid & (SETATTR_UID | SETATTR_GID)) && !isDir(inode)) {
      // chown clears setuid, and setgid when it means "group executable" (as Linux).
      let killed = mode & ~S_ISUID;
      if (killed & S_IXGRP) killed &= ~S_ISGID;
      if (killed !== mode) record.mode = killed;
    }
    let partial: SetAttrPlan['partial'];
    if (a.valid & SETATTR_SIZE) {
      const size = a.size ?? 0;
      if (isDir(inode)) throw eisdir(`inode ${inode.ino}`);
      if (!inode.chunks) throw einval(`cannot set the size of a non-regular file (inode ${inode.ino})`);
      if (!Number.isSafeInteger(size) || size < 0) throw einval(`bad size ${size}`);
      if (size > MAX_FILE_SIZE) throw new GfsError('EFBIG', `size ${size} past the largest file (${MAX_FILE_SIZE})`);
      record.size = size;
      record.mtime = time;
      if (size < inode.size) {
        const cs = this.core.cfg.chunkSize;
        const keep = Math.ceil(size / cs);
        record.drop = [...inode.chunks.keys()].filter((i) => i >= keep).sort((x, y) => x - y);
        const handle = size % cs ? inode.chunks.get(Math.floor(size / cs)) : undefined;
        if (handle !== undefined) partial = { handle, length: size % cs };
      }
      changed = true;
    }
    if (a.atime) {
      record.atime = a.atime === 'now' ? time : a.atime;
      changed = true;
    }
    if (a.mtime) {
      record.mtime = a.mtime === 'now' ? time : a.mtime;
      changed = true;
    }
    if (!changed) return undefined;
    return partial ? { record, partial } : { record };
  }

  setxattr(path: string, ino: number, name: string, value: Buffer, flags: number): void {
    const inode = this.core.ns.target(path, ino);
    checkXattrName(name);
    if (value.length > XATTR_VALUE_MAX) throw new GfsError('E2BIG', `xattr value longer than ${XATTR_VALUE_MAX} bytes`);
    if (flags & ~(XATTR_CREATE | XATTR_REPLACE) || flags === (XATTR_CREATE | XATTR_REPLACE)) throw einval(`bad xattr flags ${flags}`);
    const exists = inode.xattrs.has(name);
    if (flags & XATTR_CREATE && exists) throw new GfsError('EEXIST', `xattr exists: ${name}`);
    if (flags & XATTR_REPLACE && !exists) throw GfsError.quiet('ENODATA', `no xattr ${name}`);
    this.core.mutate({ op: 'setxattr', ino: inode.ino, name, value: value.toString('base64'), time: now() });
  }

  getxattr(path: string, ino: number, name: string): Buffer {
    const inode = this.core.ns.target(path, ino);
    checkXattrName(name);
    const value = inode.xattrs.get(name);
    if (!value) throw GfsError.quiet('ENODATA', `no xattr ${name}`);
    return value;
  }

  listxattr(path: string, ino: number): string[] {
    return [...this.core.ns.target(path, ino).xattrs.keys()];
  }

  removexattr(path: string, ino: number, name: string): void {
    const inode = this.core.ns.target(path, ino);
    checkXattrName(name);
    if (!inode.xattrs.has(name)) throw GfsError.quiet('ENODATA', `no xattr ${name}`);
    this.core.mutate({ op: 'removexattr', ino: inode.ino, name, time: now() });
  }

  open(path: string, ino: number, clientId: string): Inode {
    const inode = this.core.ns.target(path, ino);
    this.core.opens.open(inode.ino, clientId);
    return inode;
  }

  /** The last release of an unlinked file deletes it and its chunks. Unknown inodes: no-op. */
  release(ino: number, clientId: string): void {
    const last = this.core.opens.release(ino, clientId);
    const inode = this.core.ns.get(ino);
    if (last && inode && inode.nlink === 0 && !isDir(inode)) {
      this.core.mutate({ op: 'free', ino });
      this.core.log.debug({ ino }, 'unlinked file released and freed');
    }
  }
}

function checkXattrName(name: string): void {
  if (!name) throw einval('empty xattr name');
  if (Buffer.byteLength(name) > XATTR_NAME_MAX) throw new GfsError('ERANGE', `xattr name longer than ${XATTR_NAME_MAX} bytes`);
  if (name.includes('\0')) throw einval('xattr name contains a NUL byte');
}

function checkId(id: number | undefined, what: string): number {
  if (id === undefined || !Number.isInteger(id) || id < 0 || id > 0xffffffff) throw einval(`bad ${what} ${id}`);
  return id;
}
