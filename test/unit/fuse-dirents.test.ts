// The readdir and readdirplus reply records the kernel parses (struct fuse_dirent and
// fuse_direntplus), decoded here field by field as fs/fuse/readdir.c reads them.
import { describe, expect, it } from 'vitest';
import type { Attr } from '../../src/client/api.js';
import { direntPlusSize, direntSize, direntsPlus, PREFERRED_BLKSIZE, writeDirent, type FuseStat } from '../../src/fuse/stat.js';

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

describe('FUSE dirent records', () => {
  it('a dirent: inode, next offset, name length, type, name, zero padding to 8', () => {
    const name = Buffer.from('résumé.txt');
    const size = direntSize(name.length);
    expect(size % 8).toBe(0);
    const b = Buffer.alloc(size + 8, 0xee);
    expect(writeDirent(b, 8, 2 ** 45 + 3, 17, 0o040755, name)).toBe(size);
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
      rest: [b.readUInt32LE(a + 60), b.readUInt32LE(a + 64), b.readUInt32LE(a + 68), b.readUInt32LE(a + 72), b.readUInt32LE(a + 76), b.readUInt32LE(a + 80)],
    };
  }

  it('direntplus records: the entry a lookup would answer, then the dirent; from a stat, from attrs, or none', () => {
    const attr: Attr = {
      ino: 77,
      mode: 0o40755,
      nlink: 2,
      uid: 5,
      gid: 6,
      size: 4096,
      rdev: 0,
      blocks: 8,
      atime: { sec: 1, nsec: 2 },
      mtime: { sec: 3, nsec: 4 },
      ctime: { sec: 5, nsec: 6 },
      goal: 3,
      xattrs: 0,
    } as Attr;
    const names = [Buffer.from('f'), Buffer.from('sub dir'), Buffer.from('gone')];
    const b = direntsPlus(
      [
        { name: names[0]!, ino: st.ino, mode: st.mode, next: 2, stat: st },
        { name: names[1]!, ino: attr.ino, mode: attr.mode, next: 3, attr },
        { name: names[2]!, ino: 99, mode: 0o100644, next: 5 },
      ],
      1.5,
      (ino) => (ino === 77 ? 1 : ino), // the root's node id is 1 for the kernel
    );
    const s0 = direntPlusSize(1);
    const s1 = direntPlusSize(names[1]!.length);
    expect(b.length).toBe(s0 + s1 + direntPlusSize(4));

    expect(entryOut(b, 0)).toEqual({
      nodeid: st.ino,
      generation: 1,
      valid: [1, 1, 500_000_000, 500_000_000],
      attr: [st.ino, st.size, st.blocks],
      times: [-86_400, 1_796_322_075, 2 ** 34, 1, 999_999_999, 0],
      rest: [st.mode, 3, 1000, 2000, 0, 65536],
    });
    expect(dirent(b, 128)).toEqual({ ino: st.ino, off: 2, namelen: 1, type: 8, name: 'f' });

    expect(entryOut(b, s0)).toEqual({
      nodeid: 1,
      generation: 1,
      valid: [1, 1, 500_000_000, 500_000_000],
      attr: [1, 4096, 8],
      times: [1, 3, 5, 2, 4, 6],
      rest: [0o40755, 2, 5, 6, 0, PREFERRED_BLKSIZE],
    });
    expect(dirent(b, s0 + 128)).toEqual({ ino: 1, off: 3, namelen: 7, type: 4, name: 'sub dir' });

    // Without attrs: a plain dirent behind a zero entry (nodeid 0).
    const at = s0 + s1;
    expect([...b.subarray(at, at + 128)].every((x) => x === 0)).toBe(true);
    expect(dirent(b, at + 128)).toEqual({ ino: 99, off: 5, namelen: 4, type: 8, name: 'gone' });
    expect([...b.subarray(at + 128 + 24 + 4, b.length)].every((x) => x === 0)).toBe(true); // padding
  });
});
