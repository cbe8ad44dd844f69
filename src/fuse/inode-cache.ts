// What the mount remembers between master calls, keyed by inode number, bounded and
// time-limited. The kernel caches attributes and names itself; these answer what the kernel
// asks when its own cache lapses or never had it:
//  - attrs: the kernel's GETATTR after its cache expired, and the stat of a lookup;
//  - directory listings (name -> inode), from readdir or a directory this mount made: a lookup
//    after readdir (ls -l, rm -r, find) or of a name that does not exist (tar -x, cp probe
//    before create) needs no master round trip; this mount's own changes keep them exact;
//  - symlink targets (an inode's target never changes);
//  - data stamps (mtime + size when this mount last saw the file's data), so an open of an
//    unchanged file keeps the kernel's page cache.
// Changes made by other clients show up within ttlMs.
import { LRUCache } from 'lru-cache';
import type { Attr } from '../client/api.js';
import { packEntries } from '../common/dirent-pack.js';
import { DirImage } from './dir-image.js';

/** Inodes whose attrs are remembered, and directories whose listings are. */
const MAX_ATTRS = 200_000;
const MAX_LISTINGS = 4_096;
/** A listing larger than this is not kept (its lookups go to the master). */
export const MAX_LISTING_NAMES = 100_000;
const MAX_LINKS = 16_384;
/** Directories whose last change by this mount is remembered (to refuse older listings). */
const MAX_CHANGED_DIRS = 16_384;
const MAX_STAMPS = 65_536;

/** Attrs, or a tombstone of ones this mount dropped; `seq` orders it against listings in flight. */
interface AttrEntry {
  v: Attr | undefined;
  at: number;
  seq: number;
}

/**
 * A listing: as the master sent it (`image`) until this mount first changes the directory,
 * then as names (made from the image), with an image made again from names and attrs when an
 * opendir asks for one.
 */
interface Listing {
  image?: DirImage;
  names?: Map<string, number>;
  /** The directory's parent, when known (what ".." of a listing served from here names). */
  parent?: number;
  at: number;
}

/** A listing lapsed no longer than this ago, and this small, is refreshed whole on a lookup. */
const REFRESH_WITHIN_MS = 60_000;
export const REFRESH_MAX_NAMES = 4_096;

/** A fresh listing's answer: the inode, absent, stale (refresh it), or nothing known. */
export type Lookup = { ino: number } | 'absent' | 'stale' | undefined;

export class InodeCache {
  private readonly attrs = new LRUCache<number, AttrEntry>({
    max: MAX_ATTRS,
    dispose: (e, _ino, reason) => {
      if (reason === 'evict' && e.seq > this.attrsForgottenUpTo) this.attrsForgottenUpTo = e.seq;
    },
  });
  /** Highest seq of an attr entry evicted by the LRU: listings asked before it bring no attrs. */
  private attrsForgottenUpTo = 0;
  private readonly listings = new LRUCache<number, Listing>({ max: MAX_LISTINGS });
  /**
   * Attrs that came in listings, read from their images when asked for: an inode's entry in the
   * last image that listed it. Images are kept for their attrs oldest first out, within
   * MAX_LISTINGS images and MAX_ATTRS entries.
   */
  private readonly imageOf = new Map<number, DirImage>();
  private readonly images = new Set<DirImage>();
  private imageEntries = 0;
  private readonly links = new LRUCache<number, string>({ max: MAX_LINKS });
  private readonly stamps = new LRUCache<number, string>({ max: MAX_STAMPS });
  /**
   * A listing read from the master can arrive after this mount changed the directory (a
   * create racing a readdir): it then lacks the change and must not be kept. Each change
   * takes the next number of `seq`; a directory's last one is in `changed`, and forgotten
   * ones raise `forgottenUpTo` so a listing older than them is refused too.
   */
  private seq = 0;
  private forgottenUpTo = 0;
  private readonly changed = new LRUCache<number, number>({
    max: MAX_CHANGED_DIRS,
    dispose: (at) => {
      if (at > this.forgottenUpTo) this.forgottenUpTo = at;
    },
  });

  constructor(readonly ttlMs: number) {}

  /** Fresh attrs of `ino`, or undefined. */
  get(ino: number): Attr | undefined {
    if (this.ttlMs <= 0) return undefined;
    const e = this.attrs.get(ino);
    const img = this.imageOf.get(ino);
    if (img && (!e || e.seq <= img.readSeq)) return this.imageFresh(img) ? img.attr(img.indexOfIno(ino)) : undefined;
    // A lapsed entry stays (the LRU bounds it): its seq still refuses older listings' attrs.
    if (!e?.v || Date.now() - e.at > this.ttlMs) return undefined;
    return e.v;
  }

  /**
   * What a readdirplus of `img` shows of its entry for `ino`: undefined, the image's record;
   * attrs this mount learned since; or null, none (dropped or lapsed since, or the image lapsed).
   */
  attrsSince(img: DirImage, ino: number, imageFresh: boolean): Attr | null | undefined {
    const e = this.attrs.peek(ino);
    if (e && e.seq > img.readSeq) return e.v && Date.now() - e.at <= this.ttlMs ? e.v : null;
    return imageFresh ? undefined : null;
  }

  /** Whether the attrs an image brought are still to be trusted. */
  imageFresh(img: DirImage): boolean {
    return this.ttlMs > 0 && Date.now() - img.at <= this.ttlMs && img.readSeq >= this.attrsForgottenUpTo;
  }

  /**
   * Records attrs just received from the master. `readAt` (listingRead() when a listing was
   * asked for) marks attrs that may predate answers received since: they do not replace attrs
   * this mount learned or dropped after that moment (a chmod racing a readdir keeps its mode).
   */
  put(attr: Attr, readAt?: number): void {
    if (this.ttlMs <= 0) return;
    if (readAt !== undefined) {
      const cur = this.attrs.peek(attr.ino);
      if ((cur && cur.seq > readAt) || readAt < this.attrsForgottenUpTo) return;
    }
    this.attrs.set(attr.ino, { v: attr, at: Date.now(), seq: ++this.seq });
  }

  /** The last attrs received for `ino`, however old (undefined once dropped or evicted). */
  latest(ino: number): Attr | undefined {
    const e = this.attrs.peek(ino);
    const img = this.imageOf.get(ino);
    if (img && (!e || e.seq <= img.readSeq)) return img.attr(img.indexOfIno(ino));
    return e?.v;
  }

  /** The inode changed in a way its cached attrs do not show. */
  drop(ino: number | undefined): void {
    if (ino === undefined || this.ttlMs <= 0) return;
    this.attrs.set(ino, { v: undefined, at: 0, seq: ++this.seq });
  }

  /** This mount removed the directory: its listing is not worth keeping. */
  removedDir(ino: number): void {
    this.listings.delete(ino); // its attrs stay until they lapse: their seq still orders listings
  }

  // ------------------------------------------------------------------ listings

  /** A fresh, complete listing of a directory (from readdir, or a directory made here). */
  setListing(dir: number, entries: Iterable<[string, number]>, parent?: number, readAt?: number): void {
    if (this.ttlMs <= 0 || this.refused(dir, readAt)) return;
    const names = new Map(entries);
    if (names.size > MAX_LISTING_NAMES) return;
    this.listings.set(dir, { names, parent, at: Date.now() });
  }

  /**
   * A listing just read from the master, asked for at `img.readSeq`: its names (unless this
   * mount changed the directory since) and its entries' attrs (those not learned since).
   */
  setImage(dir: number, img: DirImage, parent?: number): void {
    if (this.ttlMs <= 0) return;
    this.keepAttrsOf(img);
    if (this.refused(dir, img.readSeq) || img.count > MAX_LISTING_NAMES) return;
    this.listings.set(dir, { image: img, parent, at: img.at });
  }

  private refused(dir: number, readAt: number | undefined): boolean {
    return readAt !== undefined && (readAt < this.forgottenUpTo || (this.changed.get(dir) ?? 0) > readAt);
  }

  private keepAttrsOf(img: DirImage): void {
    for (let i = 0; i < img.count; i++) this.imageOf.set(img.ino(i), img);
    this.images.add(img);
    this.imageEntries += img.count;
    while (this.images.size > MAX_LISTINGS || this.imageEntries > MAX_ATTRS) {
      const old = this.images.values().next().value!;
      this.images.delete(old);
      this.imageEntries -= old.count;
      for (let i = 0; i < old.count; i++) {
        const ino = old.ino(i);
        if (this.imageOf.get(ino) !== old) continue;
        this.imageOf.delete(ino);
        // Attrs older than the image's must not answer for it now.
        if ((this.attrs.peek(ino)?.seq ?? Infinity) <= old.readSeq) this.attrs.delete(ino);
      }
      // What it held of an inode is forgotten, as an evicted attr entry is.
      if (old.readSeq > this.attrsForgottenUpTo) this.attrsForgottenUpTo = old.readSeq;
    }
  }

  /**
   * A whole directory as a fresh listing says it is, with every entry's attrs fresh too, for an
   * opendir that needs no master; undefined when any part of it is not known to be current.
   */
  entries(dir: number): { parent: number; image: DirImage } | undefined {
    const l = this.fresh(dir);
    if (!l || l.parent === undefined) return undefined;
    const now = Date.now();
    if (l.image) {
      const img = l.image;
      if (!this.imageFresh(img)) return undefined;
      for (let i = 0; i < img.count; i++) {
        const e = this.attrs.peek(img.ino(i));
        if (e && e.seq > img.readSeq && (!e.v || now - e.at > this.ttlMs)) return undefined;
      }
      return { parent: l.parent, image: img };
    }
    const entries: Array<{ name: string; attr: Attr }> = [];
    for (const [name, ino] of l.names!) {
      const attr = this.get(ino);
      if (!attr) return undefined;
      entries.push({ name, attr });
    }
    // Taken as of now: every attr in it is the freshest this mount has.
    l.image = new DirImage(packEntries(entries), this.seq, now);
    return { parent: l.parent, image: l.image };
  }

  /**
   * What a fresh listing says of `name` in `dir`: its inode, or absent. 'stale': the listing
   * lapsed recently and is small, so reading it again beats asking for names one by one.
   */
  lookup(dir: number, name: string): Lookup {
    const l = this.listings.get(dir);
    if (!l) return undefined;
    const age = Date.now() - l.at;
    if (age > this.ttlMs) return age < REFRESH_WITHIN_MS && sizeOf(l) <= REFRESH_MAX_NAMES ? 'stale' : undefined;
    let ino: number | undefined;
    if (l.names) ino = l.names.get(name);
    else {
      const i = l.image!.indexOfName(name);
      if (i >= 0) ino = l.image!.ino(i);
    }
    return ino === undefined ? 'absent' : { ino };
  }

  /** Pass to setListing with a listing asked for now, so it is refused if `dir` changes meanwhile. */
  listingRead(): number {
    return this.seq;
  }

  private change(dir: number): void {
    this.changed.set(dir, ++this.seq);
  }

  /** This mount added `name` to `dir` (the listing, if any, stays exact). */
  added(dir: number, name: string, ino: number): void {
    this.change(dir);
    const l = this.fresh(dir);
    if (l && sizeOf(l) < MAX_LISTING_NAMES) namesOf(l).set(name, ino);
    else if (l) this.listings.delete(dir);
  }

  /** This mount removed `name` from `dir`; returns the inode the listing had for it. */
  removed(dir: number, name: string): number | undefined {
    this.change(dir);
    const l = this.fresh(dir);
    if (!l) return undefined;
    const names = namesOf(l);
    const ino = names.get(name);
    names.delete(name);
    return ino;
  }

  /** Whether a fresh listing of `dir` is kept (its entries' attrs may have lapsed). */
  listed(dir: number): boolean {
    return this.fresh(dir) !== undefined;
  }

  /** `dir` moved under `parent`. */
  reparented(dir: number, parent: number): void {
    this.change(dir);
    const l = this.listings.get(dir);
    if (l) l.parent = parent;
  }

  /** A change in `dir` whose outcome the listing cannot follow: drop it. */
  dropListing(dir: number): void {
    this.change(dir);
    this.listings.delete(dir);
  }

  /**
   * The listing of `dir` if fresh. A lapsed one is left where it is (the LRU bounds them), not
   * updated: the next lookup in `dir` reads it again ('stale'). Dropped, every lookup there
   * until something listed the directory again went to the master (a tar -x whose directory's
   * listing lapsed between a lookup and its create asked the master for each remaining name).
   */
  private fresh(dir: number): Listing | undefined {
    const l = this.listings.get(dir);
    return l && Date.now() - l.at <= this.ttlMs ? l : undefined;
  }

  // -------------------------------------------------------------- symlinks, data

  linkTarget(ino: number): string | undefined {
    return this.links.get(ino);
  }

  setLinkTarget(ino: number, target: string): void {
    this.links.set(ino, target);
  }

  /**
   * Whether the kernel's cached pages of a file can be kept at an open: the file's data is as
   * this mount last saw it. Records the current stamp either way.
   */
  keepData(attr: Attr): boolean {
    const stamp = dataStamp(attr);
    const same = this.stamps.get(attr.ino) === stamp;
    this.stamps.set(attr.ino, stamp);
    return same;
  }

  /** Whether an open answered with `attr` would keep the kernel's pages (keepData, without recording). */
  wouldKeep(attr: Attr): boolean {
    return this.stamps.get(attr.ino) === dataStamp(attr);
  }

  /** Whether `attr` shows other data (size, mtime) than the last attrs received for its inode. */
  dataDiffers(attr: Attr): boolean {
    const told = this.latest(attr.ino);
    return told !== undefined && dataStamp(told) !== dataStamp(attr);
  }

  /** This mount's own writes are what the file now holds (the page cache saw them). */
  sawData(attr: Attr): void {
    this.stamps.set(attr.ino, dataStamp(attr));
  }

  clear(): void {
    this.attrs.clear();
    this.attrsForgottenUpTo = this.seq;
    this.listings.clear();
    this.imageOf.clear();
    this.images.clear();
    this.imageEntries = 0;
    this.stamps.clear();
  }
}

function sizeOf(l: Listing): number {
  return l.names ? l.names.size : l.image!.count;
}

/** The listing's names, to be changed: the image no longer says what the directory holds. */
function namesOf(l: Listing): Map<string, number> {
  l.names ??= l.image!.nameMap();
  l.image = undefined;
  return l.names;
}

function dataStamp(a: Attr): string {
  return `${a.mtime?.sec ?? 0}.${a.mtime?.nsec ?? 0}:${a.size}`;
}
