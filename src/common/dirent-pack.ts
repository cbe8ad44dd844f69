// Directory entries with their attributes as fixed-layout little-endian records, for ReadDir
// replies. A listing of a few hundred entries as protobufjs messages costs milliseconds to
// encode and again to decode (more while the code is still cold, as it is for the few listings
// a `find` or `ls -lR` makes); packed, it is a few Buffer writes per entry.
//
// Record: u16 name length, name (UTF-8), then ATTR_BYTES of attributes. 64-bit values are
// doubles: inode numbers, sizes and times are below 2^53.
import { GfsError } from './errors.js';
import type { Attr, Attr__Output } from '../generated/gfs/index.js';

const ATTR_BYTES = 8 + 4 * 4 + 8 * 3 + 3 * (8 + 4) + 4 + 4;

export interface PackedEntry {
  name: string;
  attr: Attr;
}

export function packEntries(entries: readonly PackedEntry[]): Buffer {
  let bytes = 0;
  const names = entries.map((e) => {
    const n = Buffer.from(e.name, 'utf8');
    bytes += 2 + n.length + ATTR_BYTES;
    return n;
  });
  const out = Buffer.allocUnsafe(bytes);
  // DataView accessors are engine builtins: fast even before the JIT has seen this code.
  const dv = new DataView(out.buffer, out.byteOffset, out.byteLength);
  let o = 0;
  for (let i = 0; i < entries.length; i++) {
    const n = names[i]!;
    const a = entries[i]!.attr;
    dv.setUint16(o, n.length, true);
    out.set(n, o + 2);
    o += 2 + n.length;
    dv.setFloat64(o, Number(a.ino ?? 0), true);
    dv.setUint32(o + 8, a.mode ?? 0, true);
    dv.setUint32(o + 12, a.nlink ?? 0, true);
    dv.setUint32(o + 16, a.uid ?? 0, true);
    dv.setUint32(o + 20, a.gid ?? 0, true);
    dv.setFloat64(o + 24, Number(a.size ?? 0), true);
    dv.setFloat64(o + 32, Number(a.rdev ?? 0), true);
    dv.setFloat64(o + 40, Number(a.blocks ?? 0), true);
    dv.setFloat64(o + 48, Number(a.atime?.sec ?? 0), true);
    dv.setUint32(o + 56, a.atime?.nsec ?? 0, true);
    dv.setFloat64(o + 60, Number(a.mtime?.sec ?? 0), true);
    dv.setUint32(o + 68, a.mtime?.nsec ?? 0, true);
    dv.setFloat64(o + 72, Number(a.ctime?.sec ?? 0), true);
    dv.setUint32(o + 80, a.ctime?.nsec ?? 0, true);
    dv.setUint32(o + 84, a.goal ?? 0, true);
    dv.setUint32(o + 88, a.xattrs ?? 0, true);
    o += ATTR_BYTES;
  }
  return out;
}

/**
 * Calls `each` with the offsets of every record's name and attributes, checking that each
 * record is whole.
 */
function forEachRecord(buf: Buffer, each: (dv: DataView, name: number, nameLen: number, attr: number) => void): void {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let o = 0;
  while (o < buf.length) {
    if (o + 2 > buf.length) throw bad(o);
    const len = dv.getUint16(o, true);
    if (o + 2 + len + ATTR_BYTES > buf.length) throw bad(o + 2);
    each(dv, o + 2, len, o + 2 + len);
    o += 2 + len + ATTR_BYTES;
  }
}

export function unpackEntries(buf: Buffer): Array<{ name: string; attr: Attr__Output }> {
  const out: Array<{ name: string; attr: Attr__Output }> = [];
  forEachRecord(buf, (dv, at, len, o) => {
    out.push({
      name: buf.toString('utf8', at, at + len),
      attr: {
        ino: dv.getFloat64(o, true),
        mode: dv.getUint32(o + 8, true),
        nlink: dv.getUint32(o + 12, true),
        uid: dv.getUint32(o + 16, true),
        gid: dv.getUint32(o + 20, true),
        size: dv.getFloat64(o + 24, true),
        rdev: dv.getFloat64(o + 32, true),
        blocks: dv.getFloat64(o + 40, true),
        atime: { sec: dv.getFloat64(o + 48, true), nsec: dv.getUint32(o + 56, true) },
        mtime: { sec: dv.getFloat64(o + 60, true), nsec: dv.getUint32(o + 68, true) },
        ctime: { sec: dv.getFloat64(o + 72, true), nsec: dv.getUint32(o + 80, true) },
        goal: dv.getUint32(o + 84, true),
        xattrs: dv.getUint32(o + 88, true),
      },
    });
  });
  return out;
}

/** The inode numbers of packed entries, without decoding names or other attributes. */
export function packedInodes(buf: Buffer): number[] {
  const out: number[] = [];
  forEachRecord(buf, (dv, _name, _len, o) => out.push(dv.getFloat64(o, true)));
  return out;
}

function bad(at: number): GfsError {
  return new GfsError('EIO', `packed directory entries are cut short at byte ${at}`);
}
