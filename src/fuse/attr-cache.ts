// Attribute cache of the mount, keyed by inode number, with a path -> ino map beside it.
// The kernel is mounted with attr_timeout=0 because libfuse 2's high-level API gives every
// *name* its own kernel inode: a kernel-cached attr under one name of a hard-linked file would
// go stale when the file changes under another name. Here both names share one entry (by
// ino), and every mutation through this mount replaces or drops the entries it touches, so
// link count, mode and owner are never stale under any name. Changes made by other clients
// show up within `ttlMs`.
import type { Attr } from '../client/api.js';

const MAX_ENTRIES = 200_000;

interface AttrEntry {
  attr: Attr;
  at: number;
}

interface PathEntry {
  ino: number;
  at: number;
}

export function parentOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i <= 0 ? '/' : path.slice(0, i);
}

export class AttrCache {
  private readonly byIno = new Map<number, AttrEntry>();
  private readonly byPath = new Map<string, PathEntry>();

  constructor(private readonly ttlMs: number) {}

  get(path: string): Attr | undefined {
    if (this.ttlMs <= 0) return undefined;
    const p = this.byPath.get(path);
    if (!p) return undefined;
    const now = Date.now();
    if (now - p.at > this.ttlMs) {
      this.byPath.delete(path);
      return undefined;
    }
    return this.getIno(p.ino, now);
  }

  getIno(ino: number, now = Date.now()): Attr | undefined {
    if (this.ttlMs <= 0) return undefined;
    const e = this.byIno.get(ino);
    if (!e) return undefined;
    if (now - e.at > this.ttlMs) {
      this.byIno.delete(ino);
      return undefined;
    }
    return e.attr;
  }

  inoOf(path: string): number | undefined {
    return this.byPath.get(path)?.ino;
  }

  /** Records a fresh attr (from the master), under `path` too when given. */
  put(attr: Attr, path?: string): void {
    if (this.ttlMs <= 0) return;
    const now = Date.now();
    this.byIno.delete(attr.ino);
    this.byIno.set(attr.ino, { attr, at: now });
    if (path !== undefined) {
      this.byPath.delete(path);
      this.byPath.set(path, { ino: attr.ino, at: now });
    }
    if (this.byIno.size > MAX_ENTRIES) this.shrink(this.byIno);
    if (this.byPath.size > MAX_ENTRIES) this.shrink(this.byPath);
  }

  forgetIno(ino: number | undefined): void {
    if (ino !== undefined) this.byIno.delete(ino);
  }

  /** Drops a name and the attrs of the inode it named. */
  forgetPath(path: string): void {
    const p = this.byPath.get(path);
    if (p) this.byIno.delete(p.ino);
    this.byPath.delete(path);
  }

  /** Drops a name only (the inode's attrs stay: it lives on under other names). */
  forgetName(path: string): void {
    this.byPath.delete(path);
  }

  /**
   * Names moved by a rename of `src` to `dst`: what was cached under dst (and below it) is
   * gone, and src (with everything below it, for a directory) now answers under dst.
   */
  movePaths(src: string, dst: string, dir: boolean): void {
    this.dropTree(dst, dir);
    const moved: Array<[string, PathEntry]> = [];
    const hit = this.byPath.get(src);
    if (hit) moved.push([dst, hit]);
    this.byPath.delete(src);
    if (dir) {
      const prefix = `${src}/`;
      for (const [p, e] of this.byPath) if (p.startsWith(prefix)) moved.push([dst + p.slice(src.length), e]);
      for (const [p] of moved.slice(hit ? 1 : 0)) this.byPath.delete(src + p.slice(dst.length));
    }
    for (const [p, e] of moved) this.byPath.set(p, e);
  }

  private dropTree(path: string, dir: boolean): void {
    this.byPath.delete(path);
    if (!dir) return;
    const prefix = `${path}/`;
    for (const p of this.byPath.keys()) if (p.startsWith(prefix)) this.byPath.delete(p);
  }

  /** A directory's entries changed: its mtime/ctime (and nlink for subdirectories) did too. */
  forgetParent(path: string): void {
    const parent = this.byPath.get(parentOf(path));
    if (parent) this.byIno.delete(parent.ino);
  }

  /** Names moved (rename): every cached name may now be wrong. Inode attrs stay keyed by ino. */
  forgetAllPaths(): void {
    this.byPath.clear();
  }

  clear(): void {
    this.byIno.clear();
    this.byPath.clear();
  }

  private shrink<K, V>(m: Map<K, V>): void {
    // Maps iterate in insertion order and put() re-inserts: the first entries are the oldest.
    let drop = m.size - Math.floor(MAX_ENTRIES * 0.9);
    for (const k of m.keys()) {
      if (drop-- <= 0) break;
      m.delete(k);
    }
  }
}
