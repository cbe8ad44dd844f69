// The inode: the unit of the namespace. Directory entries name inodes, so rename, hard links
// and open-but-unlinked files all work by moving or counting references to one object.
import type { Time } from './time.js';

export const S_IFMT = 0o170000;
export const S_IFSOCK = 0o140000;
export const S_IFLNK = 0o120000;
export const S_IFREG = 0o100000;
export const S_IFBLK = 0o060000;
export const S_IFDIR = 0o040000;
export const S_IFCHR = 0o020000;
export const S_IFIFO = 0o010000;
export const S_ISUID = 0o4000;
export const S_ISGID = 0o2000;
export const S_ISVTX = 0o1000;
export const S_IXGRP = 0o0010;
export const PERM_MASK = 0o7777;

export const ROOT_INO = 1;
export const ROOT_MODE = S_IFDIR | 0o755;

/** Sizes reported for directories, as ext4 does for a small one. */
export const DIR_SIZE = 4096;

export interface Inode {
  ino: number;
  /** File type bits and permission bits, as st_mode. */
  mode: number;
  uid: number;
  gid: number;
  /** Bytes, for regular files; symlinks: target length. */
  size: number;
  rdev: number;
  /** Files: number of names. Directories: 2 + number of subdirectories. */
  nlink: number;
  atime: Time;
  mtime: Time;
  ctime: Time;
  /** Replication goal, inherited from the parent directory at creation. */
  goal: number;
  xattrs: Map<string, Buffer>;
  /** Symlinks only. */
  target?: string;
  /** Regular files only: chunk index -> chunk handle (sparse: a missing index is a hole). */
  chunks?: Map<number, number>;
  /** Directories only: name -> ino. */
  entries?: Map<string, number>;
  /** Directories only: the directory that names this one (a directory has exactly one name). */
  parent?: number;
  /** Directories only, not persistent: sorted entry names for paginated readdir. */
  sorted?: string[];
}

export const fileType = (mode: number) => mode & S_IFMT;
export const isDir = (i: Inode) => fileType(i.mode) === S_IFDIR;
export const isReg = (i: Inode) => fileType(i.mode) === S_IFREG;
export const isLnk = (i: Inode) => fileType(i.mode) === S_IFLNK;

/** File types mknod may create. */
export const MKNOD_TYPES = new Set([S_IFREG, S_IFIFO, S_IFCHR, S_IFBLK, S_IFSOCK]);

/** Identity of the caller (FUSE context). */
export interface Cred {
  uid: number;
  gid: number;
  groups: number[];
}

export const ROOT_CRED: Cred = { uid: 0, gid: 0, groups: [] };

export function inGroup(cred: Cred, gid: number): boolean {
  return cred.gid === gid || cred.groups.includes(gid);
}
