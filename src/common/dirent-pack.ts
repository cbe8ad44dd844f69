// Directory entries with their attributes as fixed-layout little-endian records, for ReadDir
// replies. A listing of a few hundred entries as protobufjs messages costs milliseconds to
// encode and again to decode (more while the code is still cold, as it is for the few listings
// a `find` or `ls -lR` makes); packed, it is a few word writes per entry.
//
// A record is laid out as Linux's struct fuse_direntplus (a fuse_entry_out, then a fuse_dirent
// and the name, padded to 8 bytes), so a FUSE mount keeps a listing as the bytes it came in and
// answers READDIRPLUS by copying records and patching the few fields that are its own (see
// src/fuse/dir-image.ts), with no object per entry. Those fields carry, on the wire:
//   entry_valid (u64 at 16): the replication goal; attr_valid (u64 at 24): the xattr count;
//   entry_valid_nsec, attr_valid_nsec, generation, blksize, flags, dirent off: zero.
// 64-bit values are inode numbers, sizes and times below 2^53 (times may be negative: two's
// complement). rdev is 32 bits, as the kernel takes it.
import { GfsError } from './errors.js';
import type { Long } from '@grpc/proto-loader';
import type { Attr, Attr__Output } from '../generated/gfs/index.js';

/** struct fuse_entry_out: nodeid, generation, entry/attr valid (s, ns), then struct fuse_attr. */
export const ENTRY_OUT_BYTES = 128;
/** Word (u32) offsets within a record. */
export const W_NODEID = 0;
export const W_GENERATION = 2;
export const W_ENTRY_VALID = 4;
export const W_ATTR_VALID = 6;
export const W_ENTRY_VALID_NS = 8;
export const W_ATTR_VALID_NS = 9;
/** struct fuse_attr */
export const W_ATTR = 10;
const A_INO = 0;
const A_SIZE = 2;
const A_BLOCKS = 4;
const A_ATIME = 6;
const A_MTIME = 8;
const A_CTIME = 10;
const A_ATIME_NS = 12;
const A_MTIME_NS = 13;
const A_CTIME_NS = 14;
export const A_MODE = 15;
const A_NLINK = 16;
const A_UID = 17;
const A_GID = 18;
const A_RDEV = 19;
export const A_BLKSIZE = 20;
export const A_FLAGS = 21;
/** struct fuse_dirent: ino, off (of the next entry), namelen, type, name. */
export const W_DIRENT = ENTRY_OUT_BYTES / 4;
export const D_INO = 0;
export const D_OFF = 2;
export const D_NAMELEN = 4;
export const D_TYPE = 5;
export const DIRENT_NAME_OFFSET = 24;
const S_IFMT = 0o170000;

export function recordSize(nameBytes: number): number {
  return (ENTRY_OUT_BYTES + DIRENT_NAME_OFFSET + nameBytes + 7) & ~7;
}

const TWO32 = 0x1_0000_0000;

/** A 64-bit field from a safe integer, as two 32-bit words (two's complement when negative). */
export function put64(u: Uint32Array, i: number, v: number): void {
  const hi = Math.floor(v / TWO32);
  u[i] = v - hi * TWO32;
  u[i + 1] = hi;
}

/** The attribute fields of a record other than size and blocks, from attrs, a stat or an inode. */
export interface RecordAttrs {
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  rdev: number | string | Long;
  atime?: Time | null;
  mtime?: Time | null;
  ctime?: Time | null;
}

/** Attrs (or a stat) with their size and blocks. */
export interface SizedAttrs extends RecordAttrs {
  size: number | string | Long;
  blocks: number | string | Long;
}

type Time = { sec?: number | string | Long; nsec?: number };

/** Writes the fuse_attr fields other than ino, blksize and flags into the record at word `w`. */
export function writeRecordAttrs(u: Uint32Array, w: number, s: RecordAttrs, size: number, blocks: number): void {
  const a = w + W_ATTR;
  put64(u, a + A_SIZE, size);
  put64(u, a + A_BLOCKS, blocks);
  put64(u, a + A_ATIME, Number(s.atime?.sec ?? 0));
  put64(u, a + A_MTIME, Number(s.mtime?.sec ?? 0));
  put64(u, a + A_CTIME, Number(s.ctime?.sec ?? 0));
  u[a + A_ATIME_NS] = s.atime?.nsec ?? 0;
  u[a + A_MTIME_NS] = s.mtime?.nsec ?? 0;
  u[a + A_CTIME_NS] = s.ctime?.nsec ?? 0;
  u[a + A_MODE] = s.mode;
  u[a + A_NLINK] = s.nlink;
  u[a + A_UID] = s.uid;
  u[a + A_GID] = s.gid;
  u[a + A_RDEV] = Number(s.rdev);
}

/**
 * Packs `count` records into a zeroed buffer (padding, and the fields that are the mount's),
 * record i named `nameOf(i)` and filled by `fill(u, w, i)` (`u`: the buffer's words, `w`: the
 * record's first word) with writeRecord.
 */
export function packRecords(count: number, nameOf: (i: number) => string, fill: (u: Uint32Array, w: number, i: number) => void): Buffer {
  const nameBytes = new Array<number>(count);
  let bytes = 0;
  for (let i = 0; i < count; i++) {
    const n = Buffer.byteLength(nameOf(i), 'utf8');
    nameBytes[i] = n;
    bytes += recordSize(n);
  }
  // Its own memory (not the shared pool): word-aligned.
  const out = Buffer.alloc(bytes);
  const u = new Uint32Array(out.buffer, out.byteOffset, bytes >>> 2);
  let at = 0;
  for (let i = 0; i < count; i++) {
    const n = nameBytes[i]!;
    const w = at >>> 2;
    fill(u, w, i);
    u[w + W_DIRENT + D_NAMELEN] = n;
    out.write(nameOf(i), at + ENTRY_OUT_BYTES + DIRENT_NAME_OFFSET, n, 'utf8');
    at += recordSize(n);
  }
  return out;
}

/** The fields of the record at word `w` that come from the file (all but the name and its length). */
export function writeRecord(u: Uint32Array, w: number, ino: number, s: RecordAttrs, size: number, blocks: number, goal: number, xattrs: number): void {
  put64(u, w + W_NODEID, ino);
  u[w + W_ENTRY_VALID] = goal;
  u[w + W_ATTR_VALID] = xattrs;
  put64(u, w + W_ATTR + A_INO, ino);
  writeRecordAttrs(u, w, s, size, blocks);
  put64(u, w + W_DIRENT + D_INO, ino);
  u[w + W_DIRENT + D_TYPE] = (s.mode & S_IFMT) >>> 12;
}

export interface PackedEntry {
  name: string;
  attr: Attr;
}

export function packEntries(entries: readonly PackedEntry[]): Buffer {
  return packRecords(
    entries.length,
    (i) => entries[i]!.name,
    (u, w, i) => {
      const a = entries[i]!.attr;
      const s = { mode: a.mode ?? 0, nlink: a.nlink ?? 0, uid: a.uid ?? 0, gid: a.gid ?? 0, rdev: a.rdev ?? 0, atime: a.atime, mtime: a.mtime, ctime: a.ctime };
      writeRecord(u, w, Number(a.ino ?? 0), s, Number(a.size ?? 0), Number(a.blocks ?? 0), a.goal ?? 0, a.xattrs ?? 0);
    },
  );
}

/** A view for reading records: DataView reads any alignment, and is fast even in cold code. */
export function viewOf(buf: Buffer): DataView {
  return new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
}

/** A 64-bit field at byte `at` as a number (signed: times before 1970). */
export function read64(dv: DataView, at: number): number {
  return dv.getInt32(at + 4, true) * TWO32 + dv.getUint32(at, true);
}

/** Where each record starts, and where the last ends (count + 1 values), checking that every record is whole. */
export function recordStarts(buf: Buffer, dv = viewOf(buf)): Uint32Array {
  let at = 0;
  const starts: number[] = [];
  while (at < buf.length) {
    if (at + ENTRY_OUT_BYTES + DIRENT_NAME_OFFSET > buf.length) throw bad(at);
    const size = recordSize(dv.getUint32(at + 4 * (W_DIRENT + D_NAMELEN), true));
    if (at + size > buf.length) throw bad(at + ENTRY_OUT_BYTES);
    starts.push(at);
    at += size;
  }
  starts.push(at);
  return Uint32Array.from(starts);
}

/** Attrs of the record at byte `at`. */
export function recordAttr(dv: DataView, at: number): Attr__Output {
  const a = at + 4 * W_ATTR;
  const u32 = (w: number) => dv.getUint32(a + 4 * w, true);
  return {
    ino: read64(dv, a + 4 * A_INO),
    mode: u32(A_MODE),
    nlink: u32(A_NLINK),
    uid: u32(A_UID),
    gid: u32(A_GID),
    size: read64(dv, a + 4 * A_SIZE),
    rdev: u32(A_RDEV),
    blocks: read64(dv, a + 4 * A_BLOCKS),
    atime: { sec: read64(dv, a + 4 * A_ATIME), nsec: u32(A_ATIME_NS) },
    mtime: { sec: read64(dv, a + 4 * A_MTIME), nsec: u32(A_MTIME_NS) },
    ctime: { sec: read64(dv, a + 4 * A_CTIME), nsec: u32(A_CTIME_NS) },
    goal: dv.getUint32(at + 4 * W_ENTRY_VALID, true),
    xattrs: dv.getUint32(at + 4 * W_ATTR_VALID, true),
  };
}

/** The name bytes of the record at byte `at`: [from, to). */
export function recordNameRange(dv: DataView, at: number): [number, number] {
  const from = at + ENTRY_OUT_BYTES + DIRENT_NAME_OFFSET;
  return [from, from + dv.getUint32(at + 4 * (W_DIRENT + D_NAMELEN), true)];
}

/** The name of the record at byte `at`. */
export function recordName(buf: Buffer, dv: DataView, at: number): string {
  const [from, to] = recordNameRange(dv, at);
  return buf.toString('utf8', from, to);
}

export function unpackEntries(buf: Buffer): Array<{ name: string; attr: Attr__Output }> {
  const dv = viewOf(buf);
  const starts = recordStarts(buf, dv);
  const out: Array<{ name: string; attr: Attr__Output }> = [];
  for (let i = 0; i + 1 < starts.length; i++) out.push({ name: recordName(buf, dv, starts[i]!), attr: recordAttr(dv, starts[i]!) });
  return out;
}

/** The inode numbers of packed entries, without decoding names or other attributes. */
export function packedInodes(buf: Buffer): number[] {
  const dv = viewOf(buf);
  const starts = recordStarts(buf, dv);
  const out: number[] = [];
  for (let i = 0; i + 1 < starts.length; i++) out.push(read64(dv, starts[i]! + 4 * W_NODEID));
  return out;
}

function bad(at: number): GfsError {
  return new GfsError('EIO', `packed directory entries are cut short at byte ${at}`);
}
