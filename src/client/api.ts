// The public contract of the gfs client library. The FUSE mount, the CLI, the benchmark and
// the tests program against this; `GfsClient` (client.ts) implements it.
import type { GfsError } from '../common/errors.js';
import type { Attr__Output, StatFsReply__Output, Timespec } from '../generated/gfs/index.js';

export type Attr = Attr__Output;
export type StatFs = StatFsReply__Output;

/** Identity a namespace operation is done as (the FUSE caller's uid/gid). */
export interface Cred {
  uid: number;
  gid: number;
  groups?: number[];
}

/** A time to set: 'now' (UTIME_NOW), or an exact instant with nanoseconds. Absent = UTIME_OMIT. */
export type TimeArg = 'now' | { sec: number; nsec: number };

export interface SetAttrChanges {
  mode?: number; // permission bits (07777)
  uid?: number;
  gid?: number;
  size?: number;
  atime?: TimeArg;
  mtime?: TimeArg;
}

export interface DirEntry {
  name: string;
  attr: Attr;
}

/** A directory's entries (name order, without "." and ".."), with the directory and its parent. */
export interface DirListing extends Array<DirEntry> {
  dir?: Attr;
  /** Inode of the directory's parent (the directory itself for the root). */
  parent?: number;
}

/**
 * A directory's entries as packed records (src/common/dirent-pack.ts, name order, without "."
 * and ".."), with the directory and its parent.
 */
export interface PackedListing {
  records: Buffer;
  dir?: Attr;
  parent?: number;
}

/** A file is addressed by path, or by inode number once open (survives rename and unlink). */
export type Target = string | number;

/**
 * An entry (a name in a directory) is addressed by path, or by its directory's inode number
 * and its name: what an inode-addressed client (the FUSE mount) uses, immune to renames of
 * the directory's ancestors.
 */
export type Entry = string | { parent: number; name: string };

/**
 * One name of an unlinkBatch. `ino`, when given, is the inode the caller saw under the name: a
 * name that holds another by then is left alone (ENOENT).
 */
export interface UnlinkBatchEntry {
  parent: number;
  name: string;
  ino?: number;
}

export interface WriteOptions {
  /** Data is on every replica's disk (fdatasync) before the call resolves. */
  sync?: boolean;
}

export interface GfsClientApi {
  readonly clientId: string;

  /** Tells `fn` every attr the master sends besides the one a call returns (directories a change touched). */
  observeAttrs(fn: (attr: Attr) => void): void;

  getattr(target: Target): Promise<Attr>;
  /** The attrs of the entry `name` of directory `parent` (ENOENT when there is none). */
  lookup(parent: number, name: string): Promise<Attr>;
  readdir(dir: Target): Promise<DirListing>;
  /** The same listing, left packed: no object per entry. */
  readdirPacked(dir: Target): Promise<PackedListing>;
  mkdir(at: Entry, mode: number, cred?: Cred): Promise<Attr>;
  /**
   * With `open`, the file is also registered as open by this client (as open() does).
   * With `forWrite` too, the master also leases the new file's first chunk (its first write needs no lookup).
   */
  create(at: Entry, mode: number, cred?: Cred, opts?: { exclusive?: boolean; open?: boolean; forWrite?: boolean }): Promise<Attr>;
  mknod(at: Entry, mode: number, rdev: number, cred?: Cred): Promise<Attr>;
  /** Resolves the inode's attrs when it lives on (other names, still open). */
  unlink(at: Entry, cred?: Cred): Promise<Attr | undefined>;
  /**
   * Unlinks of names in directories (by inode), applied one after another and answered in
   * one call: one result per entry, undefined when it was made, else the error it got.
   */
  unlinkBatch(entries: UnlinkBatchEntry[]): Promise<Array<GfsError | undefined>>;
  rmdir(at: Entry, cred?: Cred): Promise<void>;
  /**
   * flags: 1 = RENAME_NOREPLACE, 2 = RENAME_EXCHANGE. Replaces an existing target atomically.
   * Resolves the moved inode's attrs.
   */
  rename(src: Entry, dst: Entry, flags?: number, cred?: Cred): Promise<Attr | undefined>;
  link(existing: Target, at: Entry, cred?: Cred): Promise<Attr>;
  symlink(target: string, at: Entry, cred?: Cred): Promise<Attr>;
  readlink(target: Target): Promise<string>;
  setattr(target: Target, changes: SetAttrChanges, cred?: Cred): Promise<Attr>;
  truncate(target: Target, size: number, cred?: Cred): Promise<Attr>;
  statfs(): Promise<StatFs>;

  /** flags: 1 = XATTR_CREATE, 2 = XATTR_REPLACE. */
  setxattr(target: Target, name: string, value: Buffer, flags?: number, cred?: Cred): Promise<void>;
  getxattr(target: Target, name: string): Promise<Buffer>; // ENODATA when absent
  listxattr(target: Target): Promise<string[]>;
  removexattr(target: Target, name: string, cred?: Cred): Promise<void>;

  /** Registers an open handle with the master, so an unlinked file lives until release. */
  open(target: Target, flags?: number, cred?: Cred): Promise<Attr>;
  /** open(), reading the file's first bytes at the same time from where they were last seen (client.ts). */
  openWithHead(ino: number, flags: number, cred: Cred | undefined, headBytes: number): Promise<{ attr: Attr; head?: Promise<Buffer | undefined> }>;
  release(ino: number): Promise<void>;

  /**
   * Reads up to `length` bytes; short only at end of file; holes read as zeros. With `into`,
   * reads into it and returns a view of it.
   */
  read(ino: number, offset: number, length: number, into?: Buffer): Promise<Buffer>;
  /** Writes to every replica and then records the new size/mtime on the master. */
  write(ino: number, offset: number, data: Buffer, opts?: WriteOptions): Promise<Attr>;
  /**
   * Writes to every replica without telling the master the new size (write-back batching);
   * follow with commitWrite(ino, end) to make the size visible.
   */
  writeData(ino: number, offset: number, data: Buffer, opts?: WriteOptions): Promise<void>;
  /**
   * Commits the size after writes; `attrs` are attribute changes made meanwhile (chmod, chown,
   * utimens of the open file), applied after the size with their own cred.
   */
  commitWrite(ino: number, end: number, attrs?: { changes: SetAttrChanges; cred?: Cred }): Promise<Attr>;
  /** Atomically reserves [size, size+len) on the master and writes there; returns the offset. */
  append(ino: number, data: Buffer): Promise<number>;
  /** Everything written to the file so far is on the disks of all its replicas, its metadata on the master's. */
  fsync(ino: number): Promise<void>;
  /** Every namespace change so far is on the master's disk (fsync of a directory). */
  syncMetadata(): Promise<void>;

  close(): Promise<void>;
}

export type { Timespec };
