// Packed ReadDir records: what the master packs is what the client reads back, names in any
// script included, and a reply cut short is an error, never a shorter listing.
import { describe, expect, it } from 'vitest';
import { packedInodes, packEntries, unpackEntries } from '../../src/common/dirent-pack.js';

const attr = (ino: number) => ({
  ino, mode: 0o100644, nlink: 1, uid: 1000 + (ino % 1000), gid: 7, size: 2 ** 40 + ino, rdev: 0, blocks: 9,
  atime: { sec: 1_700_000_000, nsec: 1 }, mtime: { sec: 1_700_000_001, nsec: 999_999_999 },
  ctime: { sec: 1_700_000_002, nsec: 5 }, goal: 3, xattrs: ino % 2,
});

describe('dirent-pack', () => {
  const entries = [{ name: 'a', attr: attr(2) }, { name: 'ünïcødé-名前', attr: attr(2 ** 50) }, { name: 'x'.repeat(255), attr: attr(7) }];

  it('round-trips names and every attribute', () => {
    const buf = packEntries(entries);
    expect(unpackEntries(buf)).toEqual(entries);
    expect(packedInodes(buf)).toEqual([2, 2 ** 50, 7]);
    expect(unpackEntries(packEntries([]))).toEqual([]);
  });

  it('refuses a reply cut anywhere inside a record', () => {
    const buf = packEntries(entries);
    for (const cut of [1, 3, 50, buf.length - 1]) {
      expect(() => unpackEntries(buf.subarray(0, cut))).toThrow(/cut short/);
      expect(() => packedInodes(buf.subarray(0, cut))).toThrow(/cut short/);
    }
  });
});
