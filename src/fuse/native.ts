// Typed access to OUR patched build of fuse-native (patches/fuse-native+2.2.6.patch, compiled by
// scripts/build-fuse-native.sh). The patch carries times as {sec, nsec}, delivers UTIME_NOW /
// UTIME_OMIT, passes create flags, exposes the caller (fuse_get_context) and sets
// flag_nullpath_ok / flag_utime_omit_ok. Loading the unpatched prebuild would silently garble
// all of that, so we refuse to mount with it.
import { createRequire } from 'node:module';
import { GfsError } from '../common/errors.js';

export const REQUIRED_PATCH_LEVEL = 1;

export interface FuseTime {
  sec: number;
  nsec: number;
}

/** What the patched getStatArray() accepts. */
export interface FuseStat {
  mode: number;
  uid: number;
  gid: number;
  size: number;
  dev?: number;
  nlink: number;
  ino: number;
  rdev: number;
  blksize: number;
  blocks: number;
  atime: FuseTime;
  mtime: FuseTime;
  ctime: FuseTime;
}

export interface FuseStatfs {
  bsize: number;
  frsize: number;
  blocks: number;
  bfree: number;
  bavail: number;
  files: number;
  ffree: number;
  favail: number;
  fsid: number;
  flag: number;
  namemax: number;
}

export interface FuseCaller {
  uid: number;
  gid: number;
  pid: number;
  umask: number;
}

/** `err` is 0 or a negative errno; for read/write/getxattr the byte count. */
type Cb = (err: number) => void;
type CbV<T> = (err: number, value?: T) => void;
type P = string | null; // null: an open-but-unlinked file (flag_nullpath_ok)

/** The op table of the patched fuse-native (signatures checked against its index.js). */
export interface FuseOps {
  init?(cb: Cb): void;
  access?(path: string, mode: number, cb: Cb): void;
  statfs?(path: string, cb: CbV<FuseStatfs>): void;
  getattr?(path: string, cb: CbV<FuseStat>): void;
  fgetattr?(path: P, fd: number, cb: CbV<FuseStat>): void;
  flush?(path: P, fd: number, cb: Cb): void;
  fsync?(path: P, datasync: number, fd: number, cb: Cb): void;
  fsyncdir?(path: P, datasync: number, fd: number, cb: Cb): void;
  readdir?(path: P, cb: (err: number, names?: string[], stats?: FuseStat[]) => void): void;
  truncate?(path: string, size: number, cb: Cb): void;
  ftruncate?(path: P, fd: number, size: number, cb: Cb): void;
  utimens?(path: string, atime: FuseTime, mtime: FuseTime, cb: Cb): void;
  readlink?(path: string, cb: CbV<string>): void;
  chown?(path: string, uid: number, gid: number, cb: Cb): void;
  chmod?(path: string, mode: number, cb: Cb): void;
  mknod?(path: string, mode: number, dev: number, cb: Cb): void;
  setxattr?(path: string, name: string, value: Buffer, position: number, flags: number, cb: Cb): void;
  getxattr?(path: string, name: string, position: number, cb: CbV<Buffer>): void;
  listxattr?(path: string, cb: CbV<string[]>): void;
  removexattr?(path: string, name: string, cb: Cb): void;
  open?(path: string, flags: number, cb: CbV<number>): void;
  opendir?(path: string, flags: number, cb: CbV<number>): void;
  read?(path: P, fd: number, buf: Buffer, len: number, pos: number, cb: Cb): void;
  write?(path: P, fd: number, buf: Buffer, len: number, pos: number, cb: Cb): void;
  release?(path: P, fd: number, cb: Cb): void;
  releasedir?(path: P, fd: number, cb: Cb): void;
  create?(path: string, mode: number, flags: number, cb: CbV<number>): void;
  unlink?(path: string, cb: Cb): void;
  rename?(src: string, dest: string, cb: Cb): void;
  link?(src: string, dest: string, cb: Cb): void;
  symlink?(target: string, path: string, cb: Cb): void;
  mkdir?(path: string, mode: number, cb: Cb): void;
  rmdir?(path: string, cb: Cb): void;
}

export type FuseTimeout = false | number | ({ default?: number } & Partial<Record<keyof FuseOps, number | false>>);

export interface FuseOptions {
  timeout?: FuseTimeout;
  debug?: boolean;
  force?: boolean;
  mkdir?: boolean;
  allowOther?: boolean;
  defaultPermissions?: boolean;
  fsname?: string;
  subtype?: string;
  entryTimeout?: number;
  attrTimeout?: number;
}

export interface FuseInstance {
  readonly mnt: string;
  mount(cb: (err: Error | null) => void): void;
  unmount(cb: (err: Error | null) => void): void;
  getContext(): FuseCaller | null;
  _fuseOptions(): string;
}

export interface FuseClass {
  new (mnt: string, ops: FuseOps, opts?: FuseOptions): FuseInstance;
  prototype: FuseInstance;
  unmount(mnt: string, cb: (err: Error | null) => void): void;
  readonly UTIME_NOW: number;
  readonly UTIME_OMIT: number;
  readonly GFS_PATCH_LEVEL: number | undefined;
  readonly GFS_BINDING_PATH: string;
}

let cached: FuseClass | undefined;

/** Loads fuse-native and checks that the patched native build is the one in use. */
export function loadFuse(): FuseClass {
  if (cached) return cached;
  const require = createRequire(import.meta.url);
  let Fuse: FuseClass;
  try {
    Fuse = require('fuse-native') as FuseClass;
  } catch (err) {
    throw new GfsError('ENOSYS', `cannot load fuse-native (${(err as Error).message}); run scripts/build-fuse-native.sh`);
  }
  if (Fuse.GFS_PATCH_LEVEL !== REQUIRED_PATCH_LEVEL || typeof Fuse.prototype.getContext !== 'function') {
    throw new GfsError(
      'ENOSYS',
      `fuse-native at ${Fuse.GFS_BINDING_PATH ?? '?'} is not the gfs-patched build (patch level ` +
        `${String(Fuse.GFS_PATCH_LEVEL)}, need ${REQUIRED_PATCH_LEVEL}); run: bash scripts/build-fuse-native.sh`,
    );
  }
  cached = Fuse;
  return Fuse;
}
