// Client Attr -> the stat the kernel sees (times with nanoseconds, 64-bit sizes and inode
// numbers as exact JS numbers), its packed form for the low-level binding, and the kernel's
// directory entry format.
import type { Attr } from '../client/api.js';

export const S_IFMT = 0o170000;
export const S_IFDIR = 0o040000;
export const S_IFREG = 0o100000;
export const S_IFLNK = 0o120000;

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
const DIRENT_NAME_OFFSET = 24;

export function direntSize(nameBytes: number): number {
  return (DIRENT_NAME_OFFSET + nameBytes + 7) & ~7;
}

/** Writes one dirent at `at`; returns its size. `next` is the offset the kernel resumes at. */
export function writeDirent(buf: Buffer, at: number, ino: number, next: number, mode: number, name: Buffer): number {
  const size = direntSize(name.length);
  buf.writeBigUInt64LE(BigInt(ino), at);
  buf.writeBigUInt64LE(BigInt(next), at + 8);
  buf.writeUInt32LE(name.length, at + 16);
  buf.writeUInt32LE((mode & S_IFMT) >>> 12, at + 20);
  name.copy(buf, at + DIRENT_NAME_OFFSET);
  buf.fill(0, at + DIRENT_NAME_OFFSET + name.length, at + size);
  return size;
}

/**
 * struct fuse_direntplus: a fuse_entry_out (what a lookup would answer) followed by the dirent.
 * The kernel takes the entry as a lookup of that name; nodeid 0 ("." and "..", or no attrs at
 * hand) makes it a plain dirent.
 */
const ENTRY_OUT_BYTES = 128;

export function direntPlusSize(nameBytes: number): number {
  return (ENTRY_OUT_BYTES + DIRENT_NAME_OFFSET + nameBytes + 7) & ~7;
}

/** Seconds as the kernel's (u64 sec, u32 nsec) validity. */
function validity(s: number): [bigint, number] {
  const sec = Math.max(0, Math.floor(s));
  return [BigInt(sec), Math.round((s - sec) * 1e9)];
}

/**
 * Writes one direntplus at `at` for the kernel's node id `ino` (it stands for `st.ino`); returns its size.
 * `validS`: how long the kernel may keep the name and the attributes.
 */
export function writeDirentPlus(buf: Buffer, at: number, ino: number, st: FuseStat | undefined, validS: number, next: number, mode: number, name: Buffer): number {
  const size = direntPlusSize(name.length);
  buf.fill(0, at, at + ENTRY_OUT_BYTES);
  if (st) {
    const [vs, vns] = validity(validS);
    buf.writeBigUInt64LE(BigInt(ino), at); // nodeid
    buf.writeBigUInt64LE(1n, at + 8); // generation
    buf.writeBigUInt64LE(vs, at + 16); // entry_valid
    buf.writeBigUInt64LE(vs, at + 24); // attr_valid
    buf.writeUInt32LE(vns, at + 32);
    buf.writeUInt32LE(vns, at + 36);
    const a = at + 40; // struct fuse_attr
    buf.writeBigUInt64LE(BigInt(ino), a);
    buf.writeBigUInt64LE(BigInt(st.size), a + 8);
    buf.writeBigUInt64LE(BigInt(st.blocks), a + 16);
    buf.writeBigUInt64LE(BigInt(st.atime.sec), a + 24);
    buf.writeBigUInt64LE(BigInt(st.mtime.sec), a + 32);
    buf.writeBigUInt64LE(BigInt(st.ctime.sec), a + 40);
    buf.writeUInt32LE(st.atime.nsec, a + 48);
    buf.writeUInt32LE(st.mtime.nsec, a + 52);
    buf.writeUInt32LE(st.ctime.nsec, a + 56);
    buf.writeUInt32LE(st.mode, a + 60);
    buf.writeUInt32LE(st.nlink, a + 64);
    buf.writeUInt32LE(st.uid, a + 68);
    buf.writeUInt32LE(st.gid, a + 72);
    buf.writeUInt32LE(st.rdev >>> 0, a + 76);
    buf.writeUInt32LE(st.blksize, a + 80);
  }
  // The dirent carries the inode number even without attrs: glibc's readdir drops entries
  // whose d_ino is 0 (as deleted ones), so a name whose attrs lapsed would vanish from ls.
  writeDirent(buf, at + ENTRY_OUT_BYTES, ino, next, mode, name);
  return size;
}
