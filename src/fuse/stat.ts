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

/**
 * struct fuse_direntplus: a fuse_entry_out (what a lookup would answer) followed by the dirent.
 * The kernel takes the entry as a lookup of that name; nodeid 0 ("." and "..", or no attrs at
 * hand) makes it a plain dirent.
 */
const ENTRY_OUT_BYTES = 128;

export function direntPlusSize(nameBytes: number): number {
  return (ENTRY_OUT_BYTES + DIRENT_NAME_OFFSET + nameBytes + 7) & ~7;
}

/** One entry of a readdirplus answer; without `stat` or `attr` it goes as a plain dirent. */
export interface DirentPlusIn {
  name: Buffer;
  /** The file system's inode; `nodeOf` (direntsPlus) maps it to the kernel's node id. */
  ino: number;
  mode: number;
  /** The offset the kernel resumes at after this entry. */
  next: number;
  /** Attributes as the master gave them, written as they are. */
  attr?: Attr;
  /** Or as this mount shows them (a file with writes it holds): wins over `attr`. */
  stat?: FuseStat;
}

const TWO32 = 0x1_0000_0000;

/** A 64-bit field from a safe integer, as two 32-bit words (two's complement when negative). */
function put64(u: Uint32Array, i: number, v: number): void {
  const hi = Math.floor(v / TWO32);
  u[i] = v - hi * TWO32;
  u[i + 1] = hi;
}

/**
 * A readdirplus answer: per entry a fuse_entry_out (what a lookup would answer; nodeid 0 when
 * there are no attrs to give, which the kernel takes as a plain dirent) and the dirent.
 * `validS`: how long the kernel may keep the names and attributes.
 *
 * Written as 32-bit words straight from each entry's attrs, no object per entry: the first
 * listings of a `find` or `ls -lR` run before the JIT has seen this code, and building a stat
 * object per entry and writing it through DataView calls cost ~24 us an entry then, the most
 * of the mount's time in a cold `find` of 5,000 files.
 */
export function direntsPlus(list: readonly DirentPlusIn[], validS: number, nodeOf: (ino: number) => number = (ino) => ino): Buffer {
  let bytes = 0;
  for (const e of list) bytes += direntPlusSize(e.name.length);
  // Zeroed (padding, and the entry of a record without attrs), and its own memory: word-aligned.
  const out = Buffer.alloc(bytes);
  const u = new Uint32Array(out.buffer, out.byteOffset, bytes >>> 2);
  const vs = Math.max(0, Math.floor(validS));
  const vns = Math.round((validS - vs) * 1e9);
  let at = 0;
  for (const e of list) {
    const w = at >>> 2;
    const node = nodeOf(e.ino);
    const s = e.stat ?? e.attr;
    if (s) {
      put64(u, w, node);
      u[w + 2] = 1; // generation
      put64(u, w + 4, vs); // entry_valid
      put64(u, w + 6, vs); // attr_valid
      u[w + 8] = vns;
      u[w + 9] = vns;
      const a = w + 10; // struct fuse_attr
      put64(u, a, node);
      put64(u, a + 2, s.size);
      put64(u, a + 4, s.blocks);
      put64(u, a + 6, Number(s.atime?.sec ?? 0));
      put64(u, a + 8, Number(s.mtime?.sec ?? 0));
      put64(u, a + 10, Number(s.ctime?.sec ?? 0));
      u[a + 12] = s.atime?.nsec ?? 0;
      u[a + 13] = s.mtime?.nsec ?? 0;
      u[a + 14] = s.ctime?.nsec ?? 0;
      u[a + 15] = s.mode;
      u[a + 16] = s.nlink;
      u[a + 17] = s.uid;
      u[a + 18] = s.gid;
      u[a + 19] = s.rdev;
      u[a + 20] = e.stat ? e.stat.blksize : PREFERRED_BLKSIZE;
    }
    // The dirent carries the inode number even without attrs: glibc's readdir drops entries
    // whose d_ino is 0 (as deleted ones), so a name whose attrs lapsed would vanish from ls.
    const d = w + ENTRY_OUT_BYTES / 4;
    put64(u, d, node);
    put64(u, d + 2, e.next);
    u[d + 4] = e.name.length;
    u[d + 5] = (e.mode & S_IFMT) >>> 12;
    out.set(e.name, at + ENTRY_OUT_BYTES + DIRENT_NAME_OFFSET);
    at += direntPlusSize(e.name.length);
  }
  return out;
}
