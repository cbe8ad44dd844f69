// Client Attr -> the stat object the patched fuse-native understands (times with nanoseconds,
// 64-bit sizes / inode numbers as exact JS numbers).
import type { Attr } from '../client/api.js';
import type { FuseStat, FuseTime } from './native.js';

export const S_IFMT = 0o170000;
export const S_IFDIR = 0o040000;
export const S_IFREG = 0o100000;
export const S_IFLNK = 0o120000;

/** Preferred I/O size: matches max_write, so cp/dd pick buffers that become full FUSE writes. */
export const PREFERRED_BLKSIZE = 128 * 1024;

const ZERO: FuseTime = { sec: 0, nsec: 0 };

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
