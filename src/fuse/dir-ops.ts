// lookup, mkdir, rmdir, opendir/readdir/releasedir, fsyncdir. A listing taken at opendir also
// answers the lookups that follow it (ls -l, rm -r, find stat every name they list) from the
// cache, and a name this mount knows is absent from a fresh listing is answered ENOENT without
// asking the master (inode-cache.ts).
import pLimit from 'p-limit';
import type { Attr } from '../client/api.js';
import { GfsError } from '../common/errors.js';
import { statOf } from './attr-ops.js';
import { changingNames, checkName, credOf, type FsContext } from './context.js';
import { DirImage } from './dir-image.js';
import type { LowLevelOps } from './lowlevel.js';
import { S_IFDIR } from './stat.js';

/** Subdirectory listings read ahead per opendir, and at once. */
const READ_AHEAD_DIRS_MAX = 128;
const READ_AHEAD_DIRS_CONCURRENCY = 4;

export function dirOps(
  ctx: FsContext,
): Pick<LowLevelOps, 'lookup' | 'mkdir' | 'rmdir' | 'opendir' | 'readdir' | 'readdirplus' | 'releasedir' | 'fsyncdir'> {
  const { client, cache } = ctx;
  /** Listings being read again, one per directory however many lookups wait for it. */
  const refreshing = new Map<number, Promise<void>>();

  /** Reads a directory's listing into the cache (entries' attrs too). */
  async function list(ino: number): Promise<{ parent: number; image: DirImage }> {
    // A name unlinked here but not yet on the master would come back in the listing, and a
    // listing asked for after the unlink is not refused by the cache: read-ahead (which no
    // kernel op orders) waits for the directory's background unlinks like the ops do. The
    // listing counts as asked for before that wait, so an unlink that starts during it (and is
    // not waited for) makes the cache refuse it.
    const readAt = cache.listingRead();
    if (ctx.unlinks.pending > 0) await ctx.unlinks.settled([ino]);
    const listing = await client.readdirPacked(ino);
    if (listing.dir) cache.put(listing.dir, readAt);
    const image = new DirImage(listing.records, readAt, Date.now());
    cache.setImage(ino, image, listing.parent);
    return { parent: listing.parent ?? ino, image };
  }

  // Readdir-ahead: a directory being listed is usually being walked (find, ls -R, rm -r, du,
  // tar -c), so its subdirectories' listings are read in the background, a few at a time,
  // and their opendirs find them in the cache. One level per opendir, bounded per listing.
  const ahead = pLimit(READ_AHEAD_DIRS_CONCURRENCY);
  function readAhead(dir: number, image: DirImage): void {
    // A directory's link count is 2 + its subdirectories: a leaf (most of a tree) is not
    // scanned for them at all, and the scan of any other stops at the last one.
    const nlink = cache.get(dir)?.nlink ?? 0;
    if (nlink === 2) return;
    let n = 0;
    for (const ino of image.dirInos(nlink > 2 ? nlink - 2 : Infinity)) {
      if (refreshing.has(ino) || cache.listed(ino)) continue;
      if (++n > READ_AHEAD_DIRS_MAX) return;
      tracked(ino, () => ahead(() => list(ino)), () => undefined); // its opendir asks again, and reports the error
    }
  }

  /** A listing read of `dir` that lookups and opendirs of it wait for instead of asking again. */
  function tracked(dir: number, read: () => Promise<unknown>, onError: () => void): Promise<void> {
    const p = read().then(() => undefined, onError);
    refreshing.set(dir, p);
    void p.finally(() => {
      if (refreshing.get(dir) === p) refreshing.delete(dir);
    });
    return p;
  }

  function refresh(dir: number): Promise<void> {
    // On failure the lookup asks the master by name instead.
    return refreshing.get(dir) ?? tracked(dir, () => list(dir), () => cache.dropListing(dir));
  }

  return {
    async lookup(c, parent, name) {
      checkName(name);
      let known = cache.lookup(parent, name);
      if (known === 'stale') {
        await refresh(parent);
        known = cache.lookup(parent, name);
        if (known === 'stale') known = undefined;
      }
      if (known === 'absent') throw GfsError.quiet('ENOENT', `no "${name}" in directory ${parent}`);
      if (known) {
        const hit = cache.get(known.ino);
        if (hit) return statOf(ctx, hit);
      }
      let attr: Attr;
      try {
        attr = await client.lookup(parent, name);
      } catch (err) {
        // What the listing said is no longer true: it is out of date.
        if (known) cache.dropListing(parent);
        throw err;
      }
      cache.put(attr);
      if (known && known.ino !== attr.ino) cache.dropListing(parent);
      return statOf(ctx, attr);
    },

    async mkdir(c, parent, name, mode) {
      checkName(name);
      const cred = await credOf(ctx, c);
      const attr = await changingNames(ctx, parent, () => client.mkdir({ parent, name }, S_IFDIR | (mode & 0o7777), cred));
      cache.put(attr);
      cache.added(parent, name, attr.ino);
      cache.setListing(attr.ino, [], parent); // new and empty: its lookups need no master
      return statOf(ctx, attr);
    },

    async rmdir(c, parent, name) {
      checkName(name);
      const cred = await credOf(ctx, c);
      await changingNames(ctx, parent, () => client.rmdir({ parent, name }, cred));
      cache.removedDir(cache.removed(parent, name) ?? 0);
    },

    // A directory listed (or made) by this mount within the attr timeout, whose entries' attrs
    // are all as fresh, is listed again from the cache: the same window in which a lookup
    // trusts that listing (dbench and builds list the same directories over and over).
    async opendir(c, ino) {
      let known = cache.entries(ino);
      if (!known && refreshing.has(ino)) {
        await refreshing.get(ino);
        known = cache.entries(ino);
      }
      known ??= await list(ino);
      if (cache.ttlMs > 0) readAhead(ino, known.image);
      return { fh: ctx.dirs.add(ino, known.parent, known.image) };
    },

    async readdir(c, ino, size, offset, fh) {
      return ctx.dirs.read(fh, offset, size);
    },

    // The kernel takes each entry with attrs as a lookup of its name: only attrs that are still
    // fresh (this mount's cache) are given; the rest go as plain names, looked up when used.
    // A file with writes held here is shown as this mount sees it (statOf); any other as the
    // listing (or an answer since) gave it.
    async readdirplus(c, ino, size, offset, fh) {
      const image = ctx.dirs.imageOf(fh);
      const fresh = cache.imageFresh(image);
      return ctx.dirs.readPlus(fh, offset, size, (entry, i) => {
        const s = cache.attrsSince(image, entry, fresh);
        if (s === null || !ctx.files.stateOf(entry)?.dirty) return s;
        return statOf(ctx, s ?? image.attr(i));
      });
    },

    async releasedir(c, ino, fh) {
      ctx.dirs.release(fh);
    },

    // fsync(2) of a directory: its entries (every namespace change so far) are on the master's disk.
    async fsyncdir() {
      await client.syncMetadata();
    },
  };
}

