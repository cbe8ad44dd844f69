// Client Attr -> the stat the kernel sees (times with nanoseconds, 64-bit sizes and inode
// numbers as exact JS numbers), its packed form for the low-level binding, and the kernel's
// directory entry format.
import type { Attr } from '../client/api.js';
import { DIRENT_NAME_OFFSET } from '../common/dirent-pack.js';

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

// Replies are written through a DataView: its accessors are engine builtins, fast even before
// the JIT has seen this code, as it has not for the first listings of a `find` or `ls -lR`
// (Buffer's writeBigUInt64LE with BigInt conversions took ~10 us per entry then).
function viewOf(buf: Buffer): DataView {
  return new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
}

/** A 64-bit field from a safe integer, as two 32-bit halves (two's complement when negative: times before 1970). */
function setU64(dv: DataView, at: number, v: number): void {
  const hi = Math.floor(v / 0x1_0000_0000);
  dv.setUint32(at, v - hi * 0x1_0000_0000, true);
  dv.setInt32(at + 4, hi, true);
}

/** Writes one dirent at `at`; returns its size. `next` is the offset the kernel resumes at. */
export function writeDirent(buf: Buffer, at: number, ino: number, next: number, mode: number, name: Buffer, dv = viewOf(buf)): number {
  const size = direntSize(name.length);
  setU64(dv, at, ino);
  setU64(dv, at + 8, next);
  dv.setUint32(at + 16, name.length, true);
  dv.setUint32(at + 20, (mode & S_IFMT) >>> 12, true);
  buf.set(name, at + DIRENT_NAME_OFFSET);
  for (let i = at + DIRENT_NAME_OFFSET + name.length; i < at + size; i++) buf[i] = 0;
  return size;
}
