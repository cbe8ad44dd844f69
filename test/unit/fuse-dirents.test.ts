// The readdir and readdirplus reply records the kernel parses (struct fuse_dirent and
// fuse_direntplus), decoded here field by field as fs/fuse/readdir.c reads them.
import { describe, expect, it } from 'vitest';
import type { Attr } from '../../src/client/api.js';
import { packEntries, recordSize } from '../../src/common/dirent-pack.js';
import { DirHandles, type EntryAttrs } from '../../src/fuse/dir-handles.js';
import { DirImage } from '../../src/fuse/dir-image.js';
import type { DirentsReply } from '../../src/fuse/lowlevel.js';
import { direntSize, PREFERRED_BLKSIZE, writeDirent, type FuseStat } from '../../src/fuse/stat.js';

const u64 = (b: Buffer, at: number) => Number(b.readBigUInt64LE(at));
const i64 = (b: Buffer, at: number) => Number(b.readBigInt64LE(at));

function dirent(b: Buffer, at: number) {
  const namelen = b.readUInt32LE(at + 16);
  return { ino: u64(b, at), off: u64(b, at + 8), namelen, type: b.readUInt32LE(at + 20), name: b.subarray(at + 24, at + 24 + namelen).toString() };
}

const st: FuseStat = {
  ino: 2 ** 40 + 7,
  mode: 0o100644,
  nlink: 3,
  uid: 1000,
  gid: 2000,
  rdev: 0,
  size: 2 ** 33 + 5,
  blocks: 2 ** 24 + 1,
  blksize: 65536,
  atime: { sec: -86_400, nsec: 1 }, // before 1970
  mtime: { sec: 1_796_322_075, nsec: 999_999_999 },
  ctime: { sec: 2 ** 34, nsec: 0 },
};

const attr = (ino: number, mode: number, size: number, t: number): Attr => ({
  ino, mode, nlink: 2, uid: 5, gid: 6, size, rdev: 0, blocks: 8,
  atime: { sec: t, nsec: t + 1 }, mtime: { sec: t + 2, nsec: t + 3 }, ctime: { sec: t + 4, nsec: t + 5 }, goal: 3, xattrs: 1,
});

/** Writes a reply into memory full of junk, as the session's reused buffer may be. */
function sent(r: DirentsReply): Buffer {
  const out = Buffer.alloc(r.bytes, 0xee);
  r.write(out);
  return out;
}

describe('FUSE dirent records', () => {
  it('a dirent: inode, next offset, name length, type, name, zero padding to 8', () => {
    const name = Buffer.from('résumé.txt');
    const size = direntSize(name.length);
    expect(size % 8).toBe(0);
    const b = Buffer.alloc(size + 8, 0xee);
    expect(writeDirent(b, new Uint32Array(b.buffer, b.byteOffset, b.length >>> 2), 8, 2 ** 45 + 3, 17, 0o040755, name)).toBe(size);
    expect(dirent(b, 8)).toEqual({ ino: 2 ** 45 + 3, off: 17, namelen: name.length, type: 4, name: 'résumé.txt' });
    expect([...b.subarray(8 + 24 + name.length, 8 + size)].every((x) => x === 0)).toBe(true);
    expect(b[0]).toBe(0xee); // nothing before `at`
  });

  /** The fields of the direntplus record at `at` as the kernel reads them. */
  function entryOut(b: Buffer, at: number) {
    const a = at + 40;
    return {
      nodeid: u64(b, at),
      generation: u64(b, at + 8),
      valid: [u64(b, at + 16), u64(b, at + 24), b.readUInt32LE(at + 32), b.readUInt32LE(at + 36)],
      attr: [u64(b, a), u64(b, a + 8), u64(b, a + 16)],
      times: [i64(b, a + 24), i64(b, a + 32), i64(b, a + 40), b.readUInt32LE(a + 48), b.readUInt32LE(a + 52), b.readUInt32LE(a + 56)],
      rest: [b.readUInt32LE(a + 60), b.readUInt32LE(a + 64), b.readUInt32LE(a + 68), b.readUInt32LE(a + 72), b.readUInt32LE(a + 76), b.readUInt32LE(a + 80), b.readUInt32LE(a + 84)],
    };
  }

  // Directory 10 (the mount's root, node id 1 for the kernel) under parent 10, listing a file,
  // a subdirectory, and an entry whose attrs are no longer known.
  const entries = [
    { name: 'f', attr: attr(st.ino, st.mode, 4096, 100) },
    { name: 'sub dir', attr: attr(77, 0o40755, 4096, 1) },
    { name: 'gone', attr: attr(99, 0o100644, 9, 1) },
  ];
  function open() {
    const dirs = new DirHandles({ validS: 1.5, rootIno: 10 });
    const image = new DirImage(packEntries(entries), 0, Date.now());
    return { dirs, fh: dirs.add(10, 10, image) };
  }

  it('direntplus records: the entry a lookup would answer, then the dirent; from the listing, newer attrs, a stat, or none', () => {
    const { dirs, fh } = open();
    const shown: Record<number, EntryAttrs> = { [st.ino]: st, 99: null }; // 77: the listing's record as it is
    const b = sent(dirs.readPlus(fh, 0, 1 << 16, (ino) => shown[ino]));
    const sizes = [recordSize(1), recordSize(2), recordSize(1), recordSize(7), recordSize(4)];
    expect(b.length).toBe(sizes.reduce((a, n) => a + n, 0));
    const at = sizes.map((_, i) => sizes.slice(0, i).reduce((a, n) => a + n, 0));

    // "." and "..": plain dirents (nodeid 0) of the root, as node id 1.
    expect([...b.subarray(0, 128)].every((x) => x === 0)).toBe(true);
    expect(dirent(b, 128)).toEqual({ ino: 1, off: 1, namelen: 1, type: 4, name: '.' });
    expect(dirent(b, at[1]! + 128)).toEqual({ ino: 1, off: 2, namelen: 2, type: 4, name: '..' });
    expect([...b.subarray(at[1]! + 128 + 24 + 2, at[2])].every((x) => x === 0)).toBe(true);

    expect(entryOut(b, at[2]!)).toEqual({
      nodeid: st.ino,
      generation: 1,
      valid: [1, 1, 500_000_000, 500_000_000],
      attr: [st.ino, st.size, st.blocks],
      times: [-86_400, 1_796_322_075, 2 ** 34, 1, 999_999_999, 0],
      rest: [st.mode, 3, 1000, 2000, 0, PREFERRED_BLKSIZE, 0],
    });
    expect(dirent(b, at[2]! + 128)).toEqual({ ino: st.ino, off: 3, namelen: 1, type: 8, name: 'f' });

    expect(entryOut(b, at[3]!)).toEqual({
      nodeid: 77,
      generation: 1,
      valid: [1, 1, 500_000_000, 500_000_000],
      attr: [77, 4096, 8],
      times: [1, 3, 5, 2, 4, 6],
      rest: [0o40755, 2, 5, 6, 0, PREFERRED_BLKSIZE, 0],
    });
    expect(dirent(b, at[3]! + 128)).toEqual({ ino: 77, off: 4, namelen: 7, type: 4, name: 'sub dir' });

    // Without attrs: a plain dirent behind a zero entry (nodeid 0).
    expect([...b.subarray(at[4]!, at[4]! + 128)].every((x) => x === 0)).toBe(true);
    expect(dirent(b, at[4]! + 128)).toEqual({ ino: 99, off: 5, namelen: 4, type: 8, name: 'gone' });
    expect([...b.subarray(at[4]! + 128 + 24 + 4, b.length)].every((x) => x === 0)).toBe(true); // padding
  });

  it('pages by offset: each reply holds whole records that fit, and resumes where the last ended', () => {
    const { dirs, fh } = open();
    const names: string[] = [];
    for (let off = 0, n = 0; n < 10; n++) {
      const b = sent(dirs.readPlus(fh, off, recordSize(7) + recordSize(1), () => undefined));
      if (b.length === 0) break;
      for (let at = 0; at < b.length; ) {
        const d = dirent(b, at + 128);
        names.push(d.name);
        off = d.off;
        at += recordSize(d.namelen);
      }
    }
    expect(names).toEqual(['.', '..', 'f', 'sub dir', 'gone']);
    const plain = sent(dirs.read(fh, 2, 1 << 16));
    expect(dirent(plain, 0)).toEqual({ ino: st.ino, off: 3, namelen: 1, type: 8, name: 'f' });
    expect(plain.length).toBe(direntSize(1) + direntSize(7) + direntSize(4));
    expect(sent(dirs.read(fh, 5, 1 << 16)).length).toBe(0);
  });
});
