// The mount's cache must never let a listing that was asked for before a change made through
// this mount undo that change: neither the names (a create racing a readdir) nor the attrs
// (a chmod or an unlink racing a readdir, which read-ahead of subdirectories makes common).
import { describe, expect, it } from 'vitest';
import type { Attr } from '../../src/client/api.js';
import { InodeCache } from '../../src/fuse/inode-cache.js';

const attr = (ino: number, mode = 0o100644): Attr => ({
  ino, mode, nlink: 1, uid: 0, gid: 0, size: 0, rdev: 0, blocks: 0,
  atime: { sec: 1, nsec: 0 }, mtime: { sec: 1, nsec: 0 }, ctime: { sec: 1, nsec: 0 }, goal: 3, xattrs: 0,
});

describe('InodeCache', () => {
  it('keeps attrs learned after a listing was asked for over the listing\'s older ones', () => {
    const cache = new InodeCache(60_000);
    cache.put(attr(5, 0o100644));
    const readAt = cache.listingRead();
    cache.put(attr(5, 0o100600)); // chmod answered while the listing was in flight
    cache.put(attr(5, 0o100644), readAt); // the listing's copy, taken before the chmod
    expect(cache.get(5)?.mode).toBe(0o100600);
    // A listing asked for after the change is taken as it is.
    cache.put(attr(5, 0o100640), cache.listingRead());
    expect(cache.get(5)?.mode).toBe(0o100640);
  });

  it('does not bring back attrs this mount dropped after the listing was asked for', () => {
    const cache = new InodeCache(60_000);
    const readAt = cache.listingRead();
    cache.drop(9); // e.g. a hard link of it was removed: nlink changed
    cache.put(attr(9), readAt);
    expect(cache.get(9)).toBeUndefined();
    cache.put(attr(9));
    expect(cache.get(9)?.ino).toBe(9);
  });

  it('refuses a listing of a directory changed here after it was asked for', () => {
    const cache = new InodeCache(60_000);
    const readAt = cache.listingRead();
    cache.added(1, 'new', 7);
    cache.setListing(1, [['old', 6]], 1, readAt);
    expect(cache.lookup(1, 'old')).toBeUndefined(); // nothing kept: the lookup asks the master
    cache.setListing(1, [['old', 6], ['new', 7]], 1, cache.listingRead());
    expect(cache.lookup(1, 'new')).toEqual({ ino: 7 });
    expect(cache.lookup(1, 'gone')).toBe('absent');
  });
});
