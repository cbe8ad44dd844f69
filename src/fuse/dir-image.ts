// A directory listing kept as the packed records the master sent (src/common/dirent-pack.ts:
// the kernel's direntplus layout), not as an object per entry. The listings of a `find` or
// `ls -lR` are read while the mount's code for them is still cold and their entries mostly
// never looked at one by one; as objects they cost more in allocation and garbage collection
// than the rest of the walk. Names and attrs are decoded only for the entries asked about.
import type { Attr } from '../client/api.js';
import { A_MODE, read64, recordAttr, recordName, recordNameRange, recordStarts, viewOf, W_ATTR, W_NODEID } from '../common/dirent-pack.js';
import { S_IFDIR, S_IFMT } from './stat.js';

export class DirImage {
  readonly dv: DataView;
  /** Byte offset of each record, and the end of the last (count + 1 values). */
  readonly starts: Uint32Array;
  private byName?: Map<string, number>;
  private byIno?: Map<number, number>;
  private decoded?: Array<Attr | undefined>;

  /**
   * `readSeq`: the cache's sequence number when the listing was asked for (attrs learned after
   * it are newer than the image's); `at`: when it arrived.
   */
  constructor(
    readonly buf: Buffer,
    readonly readSeq: number,
    readonly at: number,
  ) {
    this.dv = viewOf(buf);
    this.starts = recordStarts(buf, this.dv);
  }

  get count(): number {
    return this.starts.length - 1;
  }

  ino(i: number): number {
    return read64(this.dv, this.starts[i]! + 4 * W_NODEID);
  }

  mode(i: number): number {
    return this.dv.getUint32(this.starts[i]! + 4 * (W_ATTR + A_MODE), true);
  }

  /** The record's name as raw bytes (a view, not a copy). */
  nameBytes(i: number): Buffer {
    const [from, to] = recordNameRange(this.dv, this.starts[i]!);
    return this.buf.subarray(from, to);
  }

  name(i: number): string {
    return recordName(this.buf, this.dv, this.starts[i]!);
  }

  /** The entry's attrs, decoded once. */
  attr(i: number): Attr {
    this.decoded ??= [];
    return (this.decoded[i] ??= recordAttr(this.dv, this.starts[i]!));
  }

  /** The index of `name`, or -1 (an index of names is made at the first ask). */
  indexOfName(name: string): number {
    if (!this.byName) {
      this.byName = new Map();
      for (let i = 0; i < this.count; i++) this.byName.set(this.name(i), i);
    }
    return this.byName.get(name) ?? -1;
  }

  /** The index of inode `ino`, or -1. */
  indexOfIno(ino: number): number {
    if (!this.byIno) {
      this.byIno = new Map();
      for (let i = 0; i < this.count; i++) this.byIno.set(this.ino(i), i);
    }
    return this.byIno.get(ino) ?? -1;
  }

  /** name -> inode of every entry. */
  nameMap(): Map<string, number> {
    const m = new Map<string, number>();
    for (let i = 0; i < this.count; i++) m.set(this.name(i), this.ino(i));
    return m;
  }

  /** Inodes of the subdirectories listed, up to the first `max` of them. */
  dirInos(max = Infinity): number[] {
    const out: number[] = [];
    for (let i = 0; i < this.count && out.length < max; i++) if ((this.mode(i) & S_IFMT) === S_IFDIR) out.push(this.ino(i));
    return out;
  }
}
