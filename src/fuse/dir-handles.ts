// Open directories: opendir takes a listing once (dir-image.ts), and the kernel's readdir
// calls (tens of KiB of dirents each) page through that snapshot by offset, so a directory
// that changes while it is being read is listed consistently: every entry at most once.
// Offsets: 0 is ".", 1 is "..", 2 + i is the listing's entry i; each dirent carries the
// offset of the one after it.
import { GfsError } from '../common/errors.js';
import {
  A_BLKSIZE, A_FLAGS, D_INO, D_OFF, ENTRY_OUT_BYTES, put64, recordSize, W_ATTR, W_ATTR_VALID, W_ATTR_VALID_NS, W_DIRENT, W_ENTRY_VALID,
  W_ENTRY_VALID_NS, W_GENERATION, W_NODEID, writeRecordAttrs, type SizedAttrs,
} from '../common/dirent-pack.js';
import type { DirImage } from './dir-image.js';
import type { DirentsReply } from './lowlevel.js';
import { direntSize, FUSE_ROOT_ID, PREFERRED_BLKSIZE, S_IFDIR, writeDirent } from './stat.js';

/** Open directories at most; past this the oldest is dropped (its next readdir is EBADF). */
const MAX_OPEN_DIRS = 65_536;
const DOT = Buffer.from('.');
const DOTDOT = Buffer.from('..');

interface OpenDir {
  ino: number;
  parent: number;
  image: DirImage;
}

/**
 * What readdirplus shows of an entry: undefined, the listing's record as it is; null, no
 * attrs (a plain dirent: the kernel looks the name up when it needs it); else these attrs.
 */
export type EntryAttrs = SizedAttrs | null | undefined;

export interface DirHandlesOptions {
  /** How long the kernel may keep the names and attributes a readdirplus gives (seconds). */
  validS: number;
  /** The file system's inode number of the mount's root (node id 1 for the kernel). */
  rootIno: number;
}

export class DirHandles {
  private readonly open = new Map<number, OpenDir>();
  private nextFh = 1;
  private readonly validS: number;
  private readonly validNs: number;

  constructor(private readonly o: DirHandlesOptions) {
    this.validS = Math.max(0, Math.floor(o.validS));
    this.validNs = Math.round((o.validS - this.validS) * 1e9);
  }

  /** Registers a listing of `ino` and returns its handle. */
  add(ino: number, parent: number, image: DirImage): number {
    if (this.open.size >= MAX_OPEN_DIRS) this.open.delete(this.open.keys().next().value!);
    let fh = this.nextFh;
    while (this.open.has(fh) || fh === 0) fh = fh >= 0x7fffffff ? 1 : fh + 1;
    this.nextFh = fh >= 0x7fffffff ? 1 : fh + 1;
    this.open.set(fh, { ino, parent, image });
    return fh;
  }

  /** The listing an open directory reads from. */
  imageOf(fh: number): DirImage {
    return this.get(fh).image;
  }

  /** Dirents from offset `offset` on, as many as fit in `size` bytes. */
  read(fh: number, offset: number, size: number): DirentsReply {
    const d = this.get(fh);
    const { image } = d;
    const total = image.count + 2;
    let bytes = 0;
    let end = offset;
    for (; end < total; end++) {
      const n = direntSize(end < 2 ? end + 1 : image.nameBytes(end - 2).length);
      if (bytes + n > size) break;
      bytes += n;
    }
    return {
      bytes,
      write: (out) => {
        const u = wordsOf(out);
        let at = 0;
        for (let k = offset; k < end; k++) {
          if (k < 2) at += writeDirent(out, u, at, this.node(k === 0 ? d.ino : d.parent), k + 1, S_IFDIR, k === 0 ? DOT : DOTDOT);
          else at += writeDirent(out, u, at, this.node(image.ino(k - 2)), k + 1, image.mode(k - 2), image.nameBytes(k - 2));
        }
      },
    };
  }

  /**
   * Direntplus records from offset `offset` on, as many as fit in `size` bytes: the listing's
   * records copied as they are, with this mount's validity, node ids and offsets written in,
   * and each entry's attrs as `attrsOf` says when written ("." and ".." go as plain dirents).
   */
  readPlus(fh: number, offset: number, size: number, attrsOf: (ino: number, i: number) => EntryAttrs): DirentsReply {
    const d = this.get(fh);
    const { image } = d;
    const { starts } = image;
    const total = image.count + 2;
    let bytes = 0;
    let end = offset;
    for (; end < total; end++) {
      const n = end < 2 ? recordSize(end + 1) : starts[end - 1]! - starts[end - 2]!;
      if (bytes + n > size) break;
      bytes += n;
    }
    return { bytes, write: (out) => this.writePlus(d, offset, end, out, attrsOf) };
  }

  private writePlus(d: OpenDir, offset: number, end: number, out: Buffer, attrsOf: (ino: number, i: number) => EntryAttrs): void {
    const { image } = d;
    const { starts } = image;
    const u = wordsOf(out);
    let at = 0;
    // "." and "..": no entry (nodeid 0), then the plain dirent.
    for (let k = offset; k < Math.min(end, 2); k++) {
      u.fill(0, at >>> 2, (at >>> 2) + W_DIRENT);
      at += ENTRY_OUT_BYTES;
      at += writeDirent(out, u, at, this.node(k === 0 ? d.ino : d.parent), k + 1, S_IFDIR, k === 0 ? DOT : DOTDOT);
    }
    const first = Math.max(offset, 2) - 2;
    const last = end - 2;
    if (first >= last) return;
    out.set(image.buf.subarray(starts[first]!, starts[last]!), at);
    for (let i = first; i < last; i++) {
      const w = at >>> 2;
      const ino = image.ino(i);
      const node = this.node(ino);
      const s = attrsOf(ino, i);
      if (s === null) {
        u.fill(0, w, w + W_DIRENT);
      } else {
        if (s) writeRecordAttrs(u, w, s, Number(s.size), Number(s.blocks));
        put64(u, w + W_NODEID, node);
        put64(u, w + W_GENERATION, 1);
        put64(u, w + W_ENTRY_VALID, this.validS);
        put64(u, w + W_ATTR_VALID, this.validS);
        u[w + W_ENTRY_VALID_NS] = this.validNs;
        u[w + W_ATTR_VALID_NS] = this.validNs;
        put64(u, w + W_ATTR, node);
        u[w + W_ATTR + A_BLKSIZE] = PREFERRED_BLKSIZE;
        u[w + W_ATTR + A_FLAGS] = 0;
      }
      // The dirent keeps the inode number even without attrs: glibc's readdir drops entries
      // whose d_ino is 0 (as deleted ones), so a name whose attrs lapsed would vanish from ls.
      put64(u, w + W_DIRENT + D_INO, node);
      put64(u, w + W_DIRENT + D_OFF, i + 3);
      at += starts[i + 1]! - starts[i]!;
    }
  }

  release(fh: number): void {
    this.open.delete(fh);
  }

  private get(fh: number): OpenDir {
    const d = this.open.get(fh);
    if (!d) throw new GfsError('EBADF', `no open directory with handle ${fh}`);
    return d;
  }

  private node(ino: number): number {
    return ino === this.o.rootIno ? FUSE_ROOT_ID : ino;
  }
}

/** A reply buffer's 32-bit words (its memory is the session's own: word-aligned). */
function wordsOf(out: Buffer): Uint32Array {
  return new Uint32Array(out.buffer, out.byteOffset, out.byteLength >>> 2);
}
