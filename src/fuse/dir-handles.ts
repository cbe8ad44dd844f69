// Open directories: opendir takes a listing from the master once, and the kernel's readdir
// calls (a few KiB of dirents each) page through that snapshot by offset, so a directory that
// changes while it is being read is listed consistently: every entry at most once.
import type { Attr } from '../client/api.js';
import { GfsError } from '../common/errors.js';
import { direntPlusSize, direntSize, writeDirent, S_IFDIR, type DirentPlusIn } from './stat.js';

interface DirEntryOut {
  name: Buffer;
  ino: number;
  mode: number;
  /** As the listing had it ("." and ".." have none). */
  attr?: Attr;
}

/** Open directories at most; past this the oldest is dropped (its next readdir is EBADF). */
const MAX_OPEN_DIRS = 65_536;

export class DirHandles {
  private readonly open = new Map<number, DirEntryOut[]>();
  private nextFh = 1;

  /** Registers a listing ("." and ".." first) and returns its handle. */
  add(ino: number, parent: number, entries: Array<{ name: string; ino: number; mode: number; attr?: Attr }>): number {
    const list: DirEntryOut[] = [
      { name: Buffer.from('.'), ino, mode: S_IFDIR },
      { name: Buffer.from('..'), ino: parent, mode: S_IFDIR },
    ];
    for (const e of entries) list.push({ name: Buffer.from(e.name), ino: e.ino, mode: e.mode, attr: e.attr });
    if (this.open.size >= MAX_OPEN_DIRS) this.open.delete(this.open.keys().next().value!);
    let fh = this.nextFh;
    while (this.open.has(fh) || fh === 0) fh = fh >= 0x7fffffff ? 1 : fh + 1;
    this.nextFh = fh >= 0x7fffffff ? 1 : fh + 1;
    this.open.set(fh, list);
    return fh;
  }

  /** Dirents from entry `offset` on, as many as fit in `size` bytes. */
  read(fh: number, offset: number, size: number): Buffer {
    const list = this.open.get(fh);
    if (!list) throw new GfsError('EBADF', `no open directory with handle ${fh}`);
    let bytes = 0;
    let end = offset;
    while (end < list.length && bytes + direntSize(list[end]!.name.length) <= size) bytes += direntSize(list[end++]!.name.length);
    const out = Buffer.allocUnsafe(bytes);
    const dv = new DataView(out.buffer, out.byteOffset, out.byteLength);
    let at = 0;
    for (let i = offset; i < end; i++) {
      const e = list[i]!;
      at += writeDirent(out, at, e.ino, i + 1, e.mode, e.name, dv);
    }
    return out;
  }

  /** Entries from `offset` on, as many as fit in `size` bytes of direntplus records. */
  readPlus(fh: number, offset: number, size: number): DirentPlusIn[] {
    const list = this.open.get(fh);
    if (!list) throw new GfsError('EBADF', `no open directory with handle ${fh}`);
    const out: DirentPlusIn[] = [];
    let bytes = 0;
    for (let i = offset; i < list.length; i++) {
      const e = list[i]!;
      bytes += direntPlusSize(e.name.length);
      if (bytes > size) break;
      out.push({ name: e.name, ino: e.ino, mode: e.mode, next: i + 1, attr: e.attr });
    }
    return out;
  }

  release(fh: number): void {
    this.open.delete(fh);
  }
}
