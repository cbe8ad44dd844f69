// The single mutation path. Every change of persistent master state (namespace + chunk table)
// is a plain JSON record applied by MasterState.apply, synchronously and deterministically:
// inode numbers, handles, versions and timestamps are decided by the caller and carried in the
// record, and validation happens before the record is built. Replaying the same records on the
// same starting state gives the same state (the operation log of the durability issue relies
// on it). Replica locations, leases, opens and the server registry are NOT persistent.
import { ChunkTable } from './chunk-table.js';
import { type Inode, S_IFDIR, S_IFLNK, isDir } from './inode.js';
import { Namespace, newInode } from './namespace.js';
import { type Time, copyTime } from './time.js';

interface NewNode {
  parent: number;
  name: string;
  ino: number;
  uid: number;
  gid: number;
  goal: number;
  time: Time;
}

export type Mutation =
  | ({ op: 'mkdir'; mode: number } & NewNode)
  /** Regular files (Create) and special files (Mknod); mode carries the file type. */
  | ({ op: 'mknod'; mode: number; rdev: number } & NewNode)
  | ({ op: 'symlink'; target: string } & NewNode)
  | { op: 'link'; parent: number; name: string; ino: number; time: Time }
  /** free: the inode loses its last name and nobody has it open -> delete it and its chunks. */
  | { op: 'unlink'; parent: number; name: string; free: boolean; time: Time }
  | { op: 'rmdir'; parent: number; name: string; time: Time }
  /** exchange: swap both names (RENAME_EXCHANGE); free: the replaced target is deleted. */
  | {
      op: 'rename';
      srcParent: number;
      srcName: string;
      dstParent: number;
      dstName: string;
      exchange: boolean;
      free: boolean;
      time: Time;
    }
  /** Absent fields are unchanged; `drop` = chunk indices freed by a shrinking size; time = ctime. */
  | {
      op: 'setattr';
      ino: number;
      mode?: number;
      uid?: number;
      gid?: number;
      size?: number;
      drop?: number[];
      atime?: Time;
      mtime?: Time;
      time: Time;
    }
  /** value is base64. */
  | { op: 'setxattr'; ino: number; name: string; value: string; time: Time }
  | { op: 'removexattr'; ino: number; name: string; time: Time }
  /** CommitWrite / ReserveAppend: size becomes `size`, mtime = ctime = time. */
  | { op: 'setsize'; ino: number; size: number; time: Time }
  /** Last release of an unlinked inode: delete it and its chunks. */
  | { op: 'free'; ino: number }
  | { op: 'allocChunk'; ino: number; index: number; handle: number; version: number }
  | { op: 'setVersion'; handle: number; version: number }
  /** Replication goal of these inodes (SetGoal; recursive = many inodes in one record). */
  | { op: 'setGoal'; inos: number[]; goal: number }
  /**
   * Inode numbers below `ino` and chunk handles below `handle` may be in use (background sync
   * mode hands out ids before their records are durable): a restart never reuses them.
   */
  | { op: 'reserveIds'; ino: number; handle: number };

export type MutationOp = Mutation['op'];

/** A record that does not fit the state: a bug in the caller's validation, never user input. */
export class CorruptMutation extends Error {
  constructor(m: Mutation, why: string) {
    super(`cannot apply ${m.op}: ${why}`);
  }
}

export class MasterState {
  readonly ns: Namespace;
  readonly chunks = new ChunkTable();
  /** Ids reserved by reserveIds records (persistent; see skipReserved). */
  readonly reserved = { ino: 0, handle: 0 };

  constructor(rootTime: Time, goal: number) {
    this.ns = new Namespace(rootTime, goal);
  }

  /** Applies one validated record. Checks everything it needs before changing anything. */
  apply(m: Mutation): void {
    switch (m.op) {
      case 'mkdir':
      case 'mknod':
      case 'symlink': {
        const parent = this.dir(m, m.parent);
        if (parent.entries!.has(m.name)) throw new CorruptMutation(m, `"${m.name}" exists`);
        if (this.ns.inodes.has(m.ino)) throw new CorruptMutation(m, `inode ${m.ino} exists`);
        const mode = m.op === 'symlink' ? S_IFLNK | 0o777 : m.op === 'mkdir' ? S_IFDIR | (m.mode & 0o7777) : m.mode;
        const inode = newInode(m.ino, mode, m.uid, m.gid, m.time, m.goal);
        if (m.op === 'symlink') {
          inode.target = m.target;
          inode.size = Buffer.byteLength(m.target);
        } else if (m.op === 'mknod') {
          inode.rdev = m.rdev;
          if ((mode & 0o170000) === 0o100000) inode.chunks = new Map();
        }
        this.ns.inodes.set(m.ino, inode);
        if (m.ino >= this.ns.nextIno) this.ns.nextIno = m.ino + 1;
        addEntry(parent, m.name, inode);
        touch(parent, m.time);
        return;
      }
      case 'link': {
        const parent = this.dir(m, m.parent);
        const inode = this.inode(m, m.ino);
        if (parent.entries!.has(m.name)) throw new CorruptMutation(m, `"${m.name}" exists`);
        if (isDir(inode)) throw new CorruptMutation(m, 'hard link to a directory');
        addEntry(parent, m.name, inode);
        inode.nlink++;
        inode.ctime = copyTime(m.time);
        touch(parent, m.time);
        return;
      }
      case 'unlink': {
        const parent = this.dir(m, m.parent);
        const inode = this.entry(m, parent, m.name);
        if (isDir(inode)) throw new CorruptMutation(m, 'unlink of a directory');
        removeEntry(parent, m.name, inode);
        inode.nlink = Math.max(0, inode.nlink - 1);
        inode.ctime = copyTime(m.time);
        touch(parent, m.time);
        if (m.free) this.freeInode(inode);
        return;
      }
      case 'rmdir': {
        const parent = this.dir(m, m.parent);
        const inode = this.entry(m, parent, m.name);
        if (!isDir(inode) || inode.entries!.size) throw new CorruptMutation(m, 'not an empty directory');
        removeEntry(parent, m.name, inode);
        touch(parent, m.time);
        this.freeInode(inode);
        return;
      }
      case 'rename':
        return this.rename(m);
      case 'setattr': {
        const inode = this.inode(m, m.ino);
        if (m.size !== undefined && !inode.chunks) throw new CorruptMutation(m, 'size of a non-file');
        if (m.mode !== undefined) inode.mode = (inode.mode & ~0o7777) | (m.mode & 0o7777);
        if (m.uid !== undefined) inode.uid = m.uid;
        if (m.gid !== undefined) inode.gid = m.gid;
        if (m.size !== undefined) {
          for (const index of m.drop ?? []) {
            const handle = inode.chunks!.get(index);
            if (handle === undefined) continue;
            inode.chunks!.delete(index);
            this.chunks.remove(handle);
          }
          inode.size = m.size;
        }
        if (m.atime) inode.atime = copyTime(m.atime);
        if (m.mtime) inode.mtime = copyTime(m.mtime);
        inode.ctime = copyTime(m.time);
        return;
      }
      case 'setxattr': {
        const inode = this.inode(m, m.ino);
        inode.xattrs.set(m.name, Buffer.from(m.value, 'base64'));
        inode.ctime = copyTime(m.time);
        return;
      }
      case 'removexattr': {
        const inode = this.inode(m, m.ino);
        inode.xattrs.delete(m.name);
        inode.ctime = copyTime(m.time);
        return;
      }
      case 'setsize': {
        const inode = this.inode(m, m.ino);
        if (!inode.chunks) throw new CorruptMutation(m, 'size of a non-file');
        inode.size = m.size;
        inode.mtime = copyTime(m.time);
        inode.ctime = copyTime(m.time);
        return;
      }
      case 'free': {
        const inode = this.inode(m, m.ino);
        if (inode.nlink > 0 && !isDir(inode)) throw new CorruptMutation(m, 'inode still has names');
        this.freeInode(inode);
        return;
      }
      case 'allocChunk': {
        const inode = this.inode(m, m.ino);
        if (!inode.chunks) throw new CorruptMutation(m, 'chunk of a non-file');
        if (inode.chunks.has(m.index) || this.chunks.get(m.handle)) throw new CorruptMutation(m, 'chunk exists');
        inode.chunks.set(m.index, m.handle);
        this.chunks.add({ handle: m.handle, ino: m.ino, index: m.index, version: m.version });
        return;
      }
      case 'setVersion': {
        const chunk = this.chunks.get(m.handle);
        if (!chunk) throw new CorruptMutation(m, `no chunk ${m.handle}`);
        chunk.version = m.version;
        return;
      }
      case 'reserveIds': {
        this.reserved.ino = Math.max(this.reserved.ino, m.ino);
        this.reserved.handle = Math.max(this.reserved.handle, m.handle);
        return;
      }
      case 'setGoal': {
        if (!Number.isSafeInteger(m.goal) || m.goal < 1) throw new CorruptMutation(m, `bad goal ${m.goal}`);
        const inodes = m.inos.map((ino) => this.inode(m, ino));
        for (const inode of inodes) inode.goal = m.goal;
        return;
      }
      default: {
        const never: never = m;
        throw new Error(`unknown mutation ${(never as { op: string }).op}`);
      }
    }
  }

  /** After recovery: new ids start past every reserved one (their records may have been lost). */
  skipReserved(): void {
    this.ns.nextIno = Math.max(this.ns.nextIno, this.reserved.ino);
    this.chunks.nextHandle = Math.max(this.chunks.nextHandle, this.reserved.handle);
  }

  private rename(m: Extract<Mutation, { op: 'rename' }>): void {
    const srcParent = this.dir(m, m.srcParent);
    const dstParent = this.dir(m, m.dstParent);
    const src = this.entry(m, srcParent, m.srcName);
    const dst = this.ns.child(dstParent, m.dstName);
    if (m.exchange) {
      if (!dst) throw new CorruptMutation(m, 'exchange with a missing name');
      removeEntry(srcParent, m.srcName, src);
      removeEntry(dstParent, m.dstName, dst);
      addEntry(srcParent, m.srcName, dst);
      addEntry(dstParent, m.dstName, src);
      dst.ctime = copyTime(m.time);
    } else {
      if (dst) {
        removeEntry(dstParent, m.dstName, dst);
        dst.nlink = isDir(dst) ? 0 : Math.max(0, dst.nlink - 1);
        dst.ctime = copyTime(m.time);
      }
      removeEntry(srcParent, m.srcName, src);
      addEntry(dstParent, m.dstName, src);
      if (dst && (m.free || isDir(dst))) this.freeInode(dst);
    }
    src.ctime = copyTime(m.time);
    touch(srcParent, m.time);
    touch(dstParent, m.time);
  }

  private freeInode(inode: Inode): void {
    for (const handle of inode.chunks?.values() ?? []) this.chunks.remove(handle);
    inode.chunks?.clear();
    this.ns.inodes.delete(inode.ino);
  }

  private inode(m: Mutation, ino: number): Inode {
    const inode = this.ns.get(ino);
    if (!inode) throw new CorruptMutation(m, `no inode ${ino}`);
    return inode;
  }

  private dir(m: Mutation, ino: number): Inode {
    const inode = this.inode(m, ino);
    if (!isDir(inode)) throw new CorruptMutation(m, `inode ${ino} is not a directory`);
    return inode;
  }

  private entry(m: Mutation, dir: Inode, name: string): Inode {
    const inode = this.ns.child(dir, name);
    if (!inode) throw new CorruptMutation(m, `no entry "${name}"`);
    return inode;
  }
}

function addEntry(dir: Inode, name: string, child: Inode): void {
  dir.entries!.set(name, child.ino);
  dir.sorted = undefined;
  if (isDir(child)) {
    child.parent = dir.ino;
    dir.nlink++;
  }
}

function removeEntry(dir: Inode, name: string, child: Inode): void {
  dir.entries!.delete(name);
  dir.sorted = undefined;
  if (isDir(child)) dir.nlink--;
}

function touch(dir: Inode, time: Time): void {
  dir.mtime = copyTime(time);
  dir.ctime = copyTime(time);
}
