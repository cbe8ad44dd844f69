// The readdir and readdirplus reply records the kernel parses (struct fuse_dirent and
// fuse_direntplus), decoded here field by field as fs/fuse/readdir.c reads them.
import { describe, expect, it } from 'vitest';
import { direntPlusSize, direntSize, writeDirent, writeDirentPlus, type FuseStat } from '../../src/fuse/stat.js';

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

  it('a direntplus: the entry a lookup would answer, then the dirent', () => {
    const name = Buffer.from('f');
    const size = direntPlusSize(name.length);
    const b = Buffer.alloc(size, 0xee);
    expect(writeDirentPlus(b, 0, st.ino, st, 1.5, 2, st.mode, name)).toBe(size);
    expect(u64(b, 0)).toBe(st.ino); // nodeid
    expect(u64(b, 8)).toBe(1); // generation
    expect([u64(b, 16), u64(b, 24), b.readUInt32LE(32), b.readUInt32LE(36)]).toEqual([1, 1, 500_000_000, 500_000_000]);
    const a = 40;
    expect([u64(b, a), u64(b, a + 8), u64(b, a + 16)]).toEqual([st.ino, st.size, st.blocks]);
    expect([i64(b, a + 24), i64(b, a + 32), i64(b, a + 40)]).toEqual([-86_400, 1_796_322_075, 2 ** 34]);
    expect([b.readUInt32LE(a + 48), b.readUInt32LE(a + 52), b.readUInt32LE(a + 56)]).toEqual([1, 999_999_999, 0]);
    expect([b.readUInt32LE(a + 60), b.readUInt32LE(a + 64), b.readUInt32LE(a + 68), b.readUInt32LE(a + 72), b.readUInt32LE(a + 76), b.readUInt32LE(a + 80)]).toEqual([
      st.mode, 3, 1000, 2000, 0, 65536,
    ]);
    expect(dirent(b, 128)).toEqual({ ino: st.ino, off: 2, namelen: 1, type: 8, name: 'f' });
  });

  it('a direntplus without attrs is a plain dirent behind a zero entry (nodeid 0)', () => {
    const name = Buffer.from('gone');
    const b = Buffer.alloc(direntPlusSize(name.length), 0xee);
    writeDirentPlus(b, 0, 99, undefined, 1, 5, 0o100644, name);
    expect([...b.subarray(0, 128)].every((x) => x === 0)).toBe(true);
    expect(dirent(b, 128)).toEqual({ ino: 99, off: 5, namelen: 4, type: 8, name: 'gone' });
  });
});
