// The whole persistent state as JSON-able data (for checkpoints) and back. Replica
// locations, leases, opens and the server registry are deliberately absent.
import type { Inode } from './inode.js';
import { ROOT_INO, isDir } from './inode.js';
import { MasterState } from './mutations.js';
import type { Time } from './time.js';

export const SNAPSHOT_FORMAT = 1;

export interface InodeRecord {
  ino: number;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  rdev: number;
  nlink: number;
  atime: Time;
  mtime: Time;
  ctime: Time;
  goal: number;
  /** [name, base64 value] */
  xattrs: Array<[string, string]>;
  target?: string;
  /** [index, handle] */
  chunks?: Array<[number, number]>;
  /** [name, ino] */
  entries?: Array<[string, number]>;
  parent?: number;
}

export interface Snapshot {
  format: number;
  nextIno: number;
  nextHandle: number;
  inodes: InodeRecord[];
  /** [handle, ino, index, version] */
  chunks: Array<[number, number, number, number]>;
  /** Ids reserved ahead (MasterState.reserved); absent in checkpoints of older masters. */
  reservedIno?: number;
  reservedHandle?: number;
}

export function snapshot(state: MasterState): Snapshot {
  const inodes = [...state.ns.inodes.values()].sort((a, b) => a.ino - b.ino).map(inodeRecord);
  const chunks = [...state.chunks.chunks.values()]
    .sort((a, b) => a.handle - b.handle)
    .map((c) => [c.handle, c.ino, c.index, c.version] as [number, number, number, number]);
  return {
    format: SNAPSHOT_FORMAT,
    nextIno: state.ns.nextIno,
    nextHandle: state.chunks.nextHandle,
    inodes,
    chunks,
    reservedIno: state.reserved.ino,
    reservedHandle: state.reserved.handle,
  };
}

/** Builds a state from a snapshot; throws on data that does not hang together. */
export function restore(snap: Snapshot): MasterState {
  if (snap?.format !== SNAPSHOT_FORMAT) throw new Error(`unknown snapshot format ${String(snap?.format)}`);
  const rootRec = snap.inodes.find((i) => i.ino === ROOT_INO);
  if (!rootRec) throw new Error('snapshot has no root inode');
  const state = new MasterState(rootRec.ctime, rootRec.goal);
  state.ns.inodes.clear();
  for (const r of snap.inodes) state.ns.inodes.set(r.ino, fromRecord(r));
  for (const [handle, ino, index, version] of snap.chunks) {
    const inode = state.ns.get(ino);
    if (!inode?.chunks || inode.chunks.get(index) !== handle) {
      throw new Error(`snapshot chunk ${handle} does not match inode ${ino} index ${index}`);
    }
    state.chunks.add({ handle, ino, index, version });
  }
  state.ns.nextIno = Math.max(snap.nextIno, state.ns.nextIno);
  state.chunks.nextHandle = Math.max(snap.nextHandle, state.chunks.nextHandle);
  state.reserved.ino = snap.reservedIno ?? 0;
  state.reserved.handle = snap.reservedHandle ?? 0;
  return state;
}

function inodeRecord(i: Inode): InodeRecord {
  const r: InodeRecord = {
    ino: i.ino,
    mode: i.mode,
    uid: i.uid,
    gid: i.gid,
    size: i.size,
    rdev: i.rdev,
    nlink: i.nlink,
    atime: { ...i.atime },
    mtime: { ...i.mtime },
    ctime: { ...i.ctime },
    goal: i.goal,
    xattrs: [...i.xattrs].map(([k, v]) => [k, v.toString('base64')]),
  };
  if (i.target !== undefined) r.target = i.target;
  if (i.chunks) r.chunks = [...i.chunks];
  if (i.entries) r.entries = [...i.entries];
  if (i.parent !== undefined) r.parent = i.parent;
  return r;
}

function fromRecord(r: InodeRecord): Inode {
  const i: Inode = {
    ino: r.ino,
    mode: r.mode,
    uid: r.uid,
    gid: r.gid,
    size: r.size,
    rdev: r.rdev,
    nlink: r.nlink,
    atime: { ...r.atime },
    mtime: { ...r.mtime },
    ctime: { ...r.ctime },
    goal: r.goal,
    xattrs: new Map(r.xattrs.map(([k, v]) => [k, Buffer.from(v, 'base64')])),
  };
  if (r.target !== undefined) i.target = r.target;
  if (r.chunks) i.chunks = new Map(r.chunks);
  if (r.entries) i.entries = new Map(r.entries);
  else if (isDir(i)) i.entries = new Map();
  if (r.parent !== undefined) i.parent = r.parent;
  return i;
}
