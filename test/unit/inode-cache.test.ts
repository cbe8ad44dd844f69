// The mount's cache must never let a listing that was asked for before a change made through
// this mount undo that change: neither the names (a create racing a readdir) nor the attrs
// (a chmod or an unlink racing a readdir, which read-ahead of subdirectories makes common).
import { describe, expect, it } from 'vitest';
import type { Attr } from '../../src/client/api.js';
import { packEntries } from '../../src/common/dirent-pack.js';
import { DirImage } from '../../src/fuse/dir-image.js';
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

  /** A listing of dir 1 with files 5 ("a") and 6 ("b"), asked for at `readAt`. */
  const image = (readAt: number, mode = 0o100644) =>
    new DirImage(packEntries([{ name: 'a', attr: attr(5, mode) }, { name: 'b', attr: attr(6, mode) }]), readAt, Date.now());

  it('answers lookups and attrs from a listing kept as it came, unless learned or dropped since it was asked for', () => {
    const cache = new InodeCache(60_000);
    cache.put(attr(5, 0o100600)); // known before the listing was asked for: the listing is newer
    const readAt = cache.listingRead();
    cache.drop(6); // dropped after it was asked for
    cache.setImage(1, image(readAt), 1);
    expect(cache.lookup(1, 'a')).toEqual({ ino: 5 });
    expect(cache.lookup(1, 'c')).toBe('absent');
    expect(cache.get(5)?.mode).toBe(0o100644);
    expect(cache.get(6)).toBeUndefined();
    cache.put(attr(6, 0o100640));
    expect(cache.get(6)?.mode).toBe(0o100640);
    // An opendir serves it, showing newer attrs where known (attrsSince).
    const known = cache.entries(1)!;
    expect(known.image.count).toBe(2);
    expect(cache.attrsSince(known.image, 5, true)).toBeUndefined();
    expect(cache.attrsSince(known.image, 6, true)?.mode).toBe(0o100640);
    cache.drop(5);
    expect(cache.entries(1)).toBeUndefined(); // an entry's attrs are no longer known: ask the master
  });

  it('keeps a listing exact through this mount\'s own changes', () => {
    const cache = new InodeCache(60_000);
    cache.setImage(1, image(cache.listingRead()), 1);
    cache.put(attr(7));
    cache.added(1, 'c', 7);
    expect(cache.removed(1, 'a')).toBe(5);
    expect(cache.lookup(1, 'a')).toBe('absent');
    expect(cache.lookup(1, 'c')).toEqual({ ino: 7 });
    const img = cache.entries(1)!.image;
    expect([...Array(img.count).keys()].map((i) => [img.name(i), img.ino(i)]).sort()).toEqual([['b', 6], ['c', 7]]);
  });

  it('a change in a directory whose listing lapsed leaves the listing to be read again', () => {
    const cache = new InodeCache(50);
    cache.setImage(1, new DirImage(image(0).buf, cache.listingRead(), Date.now() - 100), 1);
    cache.added(1, 'new', 9);
    // Not forgotten (which sent every lookup in the directory to the master): read it again.
    expect(cache.lookup(1, 'other')).toBe('stale');
    expect(cache.removed(1, 'a')).toBeUndefined(); // a lapsed listing answers nothing
    expect(cache.lookup(1, 'a')).toBe('stale');
  });

  it('forgets what a lapsed listing said', () => {
    const cache = new InodeCache(50);
    cache.setImage(1, new DirImage(image(0).buf, cache.listingRead(), Date.now() - 100), 1);
    expect(cache.get(5)).toBeUndefined();
    expect(cache.latest(5)?.ino).toBe(5); // however old
    expect(cache.lookup(1, 'a')).toBe('stale');
  });

  it('forgets an inode\'s attrs with the listing that brought them, never falling back to older ones', () => {
    const cache = new InodeCache(60_000);
    cache.put(attr(5, 0o100600)); // older than the listing below
    cache.setImage(1, image(cache.listingRead()), 1);
    expect(cache.get(5)?.mode).toBe(0o100644);
    // Listings of as many other directories as the cache keeps push the first one out.
    for (let d = 0; d < 4_096; d++) {
      const img = new DirImage(packEntries([{ name: 'x', attr: attr(100_000 + d) }]), cache.listingRead(), Date.now());
      cache.setImage(10 + d, img, 1);
    }
    expect(cache.get(100_000 + 4_095)?.ino).toBe(100_000 + 4_095);
    expect(cache.get(5)).toBeUndefined();
    expect(cache.latest(5)).toBeUndefined();
  });
});
