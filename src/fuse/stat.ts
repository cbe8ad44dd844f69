// Client Attr -> the stat the kernel sees (times with nanoseconds, 64-bit sizes and inode
// numbers as exact JS numbers), its packed form for the low-level binding, and the kernel's
// directory entry format.
import type { Attr } from '../client/api.js';
import { D_INO, D_NAMELEN, D_OFF, D_TYPE, DIRENT_NAME_OFFSET, put64 } from '../common/dirent-pack.js';

export const S_IFMT = 0o170000;
export const S_IFDIR = 0o040000;
export const S_IFREG = 0o100000;
export const S_IFLNK = 0o120000;

/** The kernel's node id of a mount's root, whatever the file system's inode number of it. */
export const FUSE_ROOT_ID = 1;

/** Preferred I/O size: matches max_write, so cp/dd pick buffers that become full FUSE writes. */
export const PREFERRED_BLKSIZE = 128 * 1024;

export interface FuseTime {
  sec: number;
  nsec: number;
}

export interface FuseStat {
  mode: number;
  uid: number;
  gid: number;
  size: number;
  nlink: number;
  ino: number;
  rdev: number;
  blksize: number;
  blocks: number;
  atime: FuseTime;
  mtime: FuseTime;
  ctime: FuseTime;
}

const ZERO: FuseTime = { sec: 0, nsec: 0 };

/** A Date.now() value as seconds and nanoseconds. */
export function timeOfMs(ms: number): FuseTime {
  return { sec: Math.floor(ms / 1000), nsec: (ms % 1000) * 1e6 };
}

function time(t: { sec: number; nsec: number } | null | undefined): FuseTime {
  if (!t) return ZERO;
  return { sec: Number(t.sec), nsec: t.nsec | 0 };
}

export function isDir(attr: Attr): boolean {
  return (attr.mode & S_IFMT) === S_IFDIR;
}

export function isReg(attr: Attr): boolean {
  return (attr.mode & S_IFMT) === S_IFREG;
}

/** `sizeOverride`: the size this mount knows including buffered, not yet committed writes. */
export function toStat(attr: Attr, sizeOverride?: number): FuseStat {
  const size = sizeOverride ?? attr.size;
  // st_blocks counts 512-byte units actually allocated; while writes are buffered, show at least
  // what they will take so `du` during a copy is not zero.
  const blocks = sizeOverride !== undefined && sizeOverride > attr.size ? Math.max(attr.blocks, Math.ceil(size / 512)) : attr.blocks;
  return {
    mode: attr.mode,
    uid: attr.uid,
    gid: attr.gid,
    size,
    nlink: attr.nlink,
    ino: attr.ino,
    rdev: attr.rdev,
    blksize: PREFERRED_BLKSIZE,
    blocks,
    atime: time(attr.atime),
    mtime: time(attr.mtime),
    ctime: time(attr.ctime),
  };
}

/** The Float64Array layout fuse-ll.c reads (LL_ST_*). */
export function packStat(s: FuseStat, out: Float64Array): Float64Array {
  out[0] = s.ino;
  out[1] = s.mode;
  out[2] = s.nlink;
  out[3] = s.uid;
  out[4] = s.gid;
  out[5] = s.rdev;
  out[6] = s.size;
  out[7] = s.blocks;
  out[8] = s.atime.sec;
  out[9] = s.atime.nsec;
  out[10] = s.mtime.sec;
  out[11] = s.mtime.nsec;
  out[12] = s.ctime.sec;
  out[13] = s.ctime.nsec;
  out[14] = s.blksize;
  return out;
}

/** struct fuse_dirent: u64 ino, u64 off (of the next entry), u32 namelen, u32 type, name, padded to 8. */

export function direntSize(nameBytes: number): number {
  return (DIRENT_NAME_OFFSET + nameBytes + 7) & ~7;
}

/**
 * Writes one dirent at byte `at` (a multiple of 8) of `buf`, whose words are `u`; returns its
 * size. `next` is the offset the kernel resumes at.
 */
export function writeDirent(buf: Buffer, u: Uint32Array, at: number, ino: number, next: number, mode: number, name: Buffer): number {
  const size = direntSize(name.length);
  const w = at >>> 2;
  put64(u, w + D_INO, ino);
  put64(u, w + D_OFF, next);
  u[w + D_NAMELEN] = name.length;
  u[w + D_TYPE] = (mode & S_IFMT) >>> 12;
  buf.set(name, at + DIRENT_NAME_OFFSET);
  buf.fill(0, at + DIRENT_NAME_OFFSET + name.length, at + size);
  return size;
}
