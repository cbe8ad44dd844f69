// The low-level (inode-addressed) FUSE session of OUR patched fuse-native (fuse-ll.c, patch
// level 2): the kernel's node ids are gfs inode numbers, so the kernel can cache attributes and
// names per inode (hard links share one kernel inode), and /dev/fuse is read on the event loop
// itself, with no thread hand-offs. This module loads the binding, turns its callbacks into
// calls of an op table (async functions returning what the kernel is to be told), and answers
// the kernel: the value, or the errno of the error (errno-table.ts). Every request is answered
// exactly once, within a time bound.
import { createRequire } from 'node:module';
import { GfsError } from '../common/errors.js';
import type { Logger } from '../common/logger.js';
import type { OpStats } from '../common/op-stats.js';
import { errnoNumberOf, toErrno } from './errno-table.js';
import { FUSE_ROOT_ID, packStat, type FuseStat } from './stat.js';

/** The binding's low-level API version this code speaks (ll_level of fuse-ll.c). */
export const REQUIRED_LL_LEVEL = 7;

// Indexed by the binding's op numbers (fuse-ll.c LL_OP_*). 'forget' never reaches JS: the
// binding acknowledges it itself.
const OP_NAMES = [
  'init', 'destroy', 'lookup', 'forget', 'getattr', 'setattr', 'readlink', 'mknod', 'mkdir', 'unlink',
  'rmdir', 'symlink', 'rename', 'link', 'open', 'read', 'write', 'flush', 'release', 'fsync', 'opendir',
  'readdir', 'releasedir', 'fsyncdir', 'statfs', 'setxattr', 'getxattr', 'listxattr', 'removexattr',
  'access', 'create', 'readdirplus', 'fallocate',
] as const;
type OpName = (typeof OP_NAMES)[number];

/** setattr's to_set bits (fuse_lowlevel.h FUSE_SET_ATTR_*). */
export const SET_ATTR = { MODE: 1, UID: 2, GID: 4, SIZE: 8, ATIME: 16, MTIME: 32, ATIME_NOW: 128, MTIME_NOW: 256 } as const;
/** Open reply flags (fuse-ll.c LL_OPEN_*). */
export const OPEN_DIRECT_IO = 1;
export const OPEN_KEEP_CACHE = 2;

/** Who made a request (fuse_req_ctx). */
export interface Caller {
  uid: number;
  gid: number;
  pid: number;
}

/** What setattr asks to change (the fields whose SET_ATTR bit is in `valid`). */
export interface SetAttrIn {
  valid: number;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  atime: { sec: number; nsec: number };
  mtime: { sec: number; nsec: number };
}

export interface Opened {
  fh: number;
  /** OPEN_* bits. */
  flags?: number;
}

export interface Statfs {
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

/**
 * A readdir answer of `bytes` bytes, written when it is sent: into memory the session reuses
 * for every answer (they are sent at once), not a fresh buffer per call (tens of KiB each, its
 * pages faulted in anew while the buffers of earlier answers wait for the garbage collector).
 */
export interface DirentsReply {
  bytes: number;
  write(out: Buffer): void;
}

/** The operations a low-level file system implements; inode numbers are the file system's own. */
export interface LowLevelOps {
  lookup(c: Caller, parent: number, name: string): Promise<FuseStat>;
  getattr(c: Caller, ino: number, fh: number | undefined): Promise<FuseStat>;
  setattr(c: Caller, ino: number, set: SetAttrIn, fh: number | undefined): Promise<FuseStat>;
  readlink(c: Caller, ino: number): Promise<string>;
  mknod(c: Caller, parent: number, name: string, mode: number, rdev: number): Promise<FuseStat>;
  mkdir(c: Caller, parent: number, name: string, mode: number): Promise<FuseStat>;
  unlink(c: Caller, parent: number, name: string): Promise<void>;
  rmdir(c: Caller, parent: number, name: string): Promise<void>;
  symlink(c: Caller, parent: number, name: string, target: string): Promise<FuseStat>;
  rename(c: Caller, parent: number, name: string, newParent: number, newName: string): Promise<void>;
  link(c: Caller, ino: number, newParent: number, newName: string): Promise<FuseStat>;
  open(c: Caller, ino: number, flags: number): Promise<Opened>;
  /** The bytes (a view is fine: it is copied to the kernel before anything else runs). */
  read(c: Caller, ino: number, size: number, offset: number, fh: number): Promise<Buffer>;
  /** `data` is valid only until this call returns: copy what is kept. */
  write(c: Caller, ino: number, data: Buffer, offset: number, fh: number): Promise<number>;
  flush(c: Caller, ino: number, fh: number): Promise<void>;
  release(c: Caller, ino: number, fh: number): Promise<void>;
  fsync(c: Caller, ino: number, datasync: boolean, fh: number): Promise<void>;
  opendir(c: Caller, ino: number): Promise<Opened>;
  /** Directory entries in the kernel's dirent format, at most `size` bytes. */
  readdir(c: Caller, ino: number, size: number, offset: number, fh: number): Promise<DirentsReply>;
  /** Entries with their attributes (none for "." and ".." or when not known fresh) as direntplus records, at most `size` bytes. */
  readdirplus(c: Caller, ino: number, size: number, offset: number, fh: number): Promise<DirentsReply>;
  releasedir(c: Caller, ino: number, fh: number): Promise<void>;
  fsyncdir(c: Caller, ino: number, fh: number): Promise<void>;
  statfs(c: Caller, ino: number): Promise<Statfs>;
  /** `value` is valid only until this call returns. */
  setxattr(c: Caller, ino: number, name: string, value: Buffer, flags: number): Promise<void>;
  getxattr(c: Caller, ino: number, name: string): Promise<Buffer>;
  listxattr(c: Caller, ino: number): Promise<string[]>;
  removexattr(c: Caller, ino: number, name: string): Promise<void>;
  access(c: Caller, ino: number, mask: number): Promise<void>;
  create(c: Caller, parent: number, name: string, mode: number, flags: number): Promise<FuseStat & Opened & { openFlags?: number }>;
  /** fallocate(2) on an open file: `mode` is its FALLOC_FL_* bits. */
  fallocate(c: Caller, ino: number, mode: number, offset: number, length: number, fh: number): Promise<void>;
}

interface Binding {
  ll_level?: number;
  ll_mount(mnt: string, opts: string, handler: Handler, scratch: Float64Array): void;
  ll_unmount(): void;
  ll_reply_err(slot: number, errno: number): void;
  ll_reply_none(slot: number): void;
  ll_reply_entry(slot: number, st: Float64Array, attrTimeout: number, entryTimeout: number): void;
  ll_reply_create(slot: number, st: Float64Array, attrTimeout: number, entryTimeout: number, fh: number, flags: number): void;
  ll_reply_attr(slot: number, st: Float64Array, attrTimeout: number): void;
  ll_reply_open(slot: number, fh: number, flags: number): void;
  ll_reply_write(slot: number, n: number): void;
  ll_reply_buf(slot: number, buf: Buffer, n: number): void;
  ll_reply_readlink(slot: number, target: string): void;
  ll_reply_xattr(slot: number, size: number): void;
  ll_reply_statfs(slot: number, s: Float64Array): void;
  ll_notify_inval_inode(ino: number, off: number, len: number): number;
  ll_notify_store(ino: number, off: number, buf: Buffer, done: (result: number) => void): number;
}

/**
 * A request from the binding. s1/s2: its names; null when one is not valid UTF-8 (fuse-ll.c's
 * ll_str). Its data (write, setxattr) is bytes [bufOff, bufOff+bufLen) of `buf`, the session's
 * receive buffer: one Buffer for every request, valid only during the call.
 */
type Handler = (op: number, slot: number, uid: number, gid: number, pid: number, a: number, b: number, c: number, d: number, s1: string | null, s2: string | null, buf: Buffer, bufOff: number, bufLen: number) => void;

let cached: Binding | undefined;

/** Loads our patched fuse-native and checks it has the low-level API this code speaks. */
export function loadBinding(): Binding {
  if (cached) return cached;
  const require = createRequire(import.meta.url);
  let b: Binding;
  let where = '?';
  try {
    const load = require('node-gyp-build') as (dir: string) => Binding;
    const dir = require.resolve('fuse-native/package.json').replace(/\/package\.json$/, '');
    where = dir;
    b = load(dir);
  } catch (err) {
    throw new GfsError('ENOSYS', `cannot load fuse-native (${(err as Error).message}); run scripts/build-fuse-native.sh`);
  }
  if (b.ll_level !== REQUIRED_LL_LEVEL) {
    throw new GfsError('ENOSYS', `fuse-native at ${where} is not the gfs-patched build with the low-level session (level ${String(b.ll_level)}, need ${REQUIRED_LL_LEVEL}); run: bash scripts/build-fuse-native.sh`);
  }
  cached = b;
  return b;
}

export interface SessionOptions {
  /** -o options for fuse_mount and fuse_lowlevel_new. */
  options: string[];
  /** Kernel cache lifetime of attributes and of names, in seconds. */
  attrTimeoutS: number;
  entryTimeoutS: number;
  /** The kernel's root (node id 1) is this inode of the file system. */
  rootIno: number;
  /** Bound on one request, by op (ops not named: `default`). */
  timeouts: { default: number } & Partial<Record<OpName, number>>;
  log: Logger;
  stats: OpStats;
  /** Called once the kernel side is gone (unmounted from outside, or by unmount()). */
  onGone?: () => void;
}

/**
 * One mounted low-level session. Kernel node id 1 is the file system's root inode (rootIno):
 * ids are translated both ways here, so the ops only ever see the file system's numbers.
 */
export class LowLevelSession {
  private readonly b = loadBinding();
  private readonly scratch = new Float64Array(8);
  private readonly st = new Float64Array(15);
  private readonly statfsArr = new Float64Array(11);
  private mounted = false;

  private constructor(
    readonly dir: string,
    private readonly ops: LowLevelOps,
    private readonly o: SessionOptions,
  ) {}

  static mount(dir: string, ops: LowLevelOps, o: SessionOptions): LowLevelSession {
    const s = new LowLevelSession(dir, ops, o);
    s.b.ll_mount(dir, o.options.length ? `-o${o.options.join(',')}` : '', s.handler, s.scratch);
    s.mounted = true;
    return s;
  }

  /** Unmounts and frees the session. Idempotent. Never call from inside an op (see fuse-ll.c). */
  unmount(): void {
    if (!this.mounted) return;
    this.mounted = false;
    this.b.ll_unmount();
    this.o.onGone?.();
  }

  /** Drops the kernel's cached attributes of `ino` (another client may have changed them). */
  invalidateAttrs(ino: number): void {
    if (this.mounted) this.b.ll_notify_inval_inode(this.toKernel(ino), -1, 0);
  }

  /**
   * Puts `data` into the kernel's page cache of `ino` at `off` (the kernel extends its idea of
   * the file's size to cover it). Runs on a libuv worker; resolves 0 or -errno once written.
   */
  storeData(ino: number, off: number, data: Buffer): Promise<number> {
    if (!this.mounted) return Promise.resolve(-errnoNumberOf('ENOTCONN'));
    return new Promise((resolve) => {
      const r = this.b.ll_notify_store(this.toKernel(ino), off, data, resolve);
      if (r !== 0) resolve(r);
    });
  }

  /** Memory for readdir answers, as large as the largest one yet (the kernel asks for at most max_pages). */
  private direntsOut = Buffer.alloc(0);

  private toKernel(ino: number): number {
    return ino === this.o.rootIno ? FUSE_ROOT_ID : ino;
  }

  private toFs(ino: number): number {
    return ino === FUSE_ROOT_ID ? this.o.rootIno : ino;
  }

  private pack(s: FuseStat): Float64Array {
    return packStat({ ...s, ino: this.toKernel(s.ino) }, this.st);
  }

  private readonly handler: Handler = (op, slot, uid, gid, pid, a, b, c, d, s1, s2, buf, bufOff, bufLen) => {
    const caller: Caller = { uid, gid, pid };
    if (s1 === null || s2 === null) {
      // Names are UTF-8 end to end (the master keeps strings): one that is not cannot be
      // stored or found, and mapping its bad bytes to U+FFFD would alias other names.
      this.o.stats.record(OP_NAMES[op] ?? 'unknown', 0, true);
      if (slot) this.b.ll_reply_err(slot, errnoNumberOf('EILSEQ'));
      return;
    }
    try {
      this.dispatch(op, slot, caller, a, b, c, d, s1, s2, buf && buf.subarray(bufOff, bufOff + bufLen));
    } catch (err) {
      this.o.log.error({ op: OP_NAMES[op], err: (err as Error)?.stack ?? String(err) }, 'fuse op dispatch crashed');
      if (slot) this.b.ll_reply_err(slot, errnoNumberOf('EIO'));
    }
  };

  private dispatch(op: number, slot: number, c: Caller, a: number, b: number, cc: number, d: number, s1: string, s2: string, buf: Buffer): void {
    const ops = this.ops;
    const fh = (v: number) => (v < 0 ? undefined : v);
    const B = this.b;
    const { attrTimeoutS: at, entryTimeoutS: et } = this.o;
    const entry = (name: OpName, p: Promise<FuseStat>) => this.answer(name, slot, p, (s) => B.ll_reply_entry(slot, this.pack(s), at, et));
    const attr = (name: OpName, p: Promise<FuseStat>) => this.answer(name, slot, p, (s) => B.ll_reply_attr(slot, this.pack(s), at));
    const done = (name: OpName, p: Promise<void>) => this.answer(name, slot, p, () => B.ll_reply_err(slot, 0));
    const ino = this.toFs(a);
    switch (op) {
      case 0: // init
        this.o.log.info({ proto: `${a}.${b}`, maxWrite: cc, maxReadahead: d }, 'fuse session initialised');
        return;
      case 1: // destroy: the kernel side is gone
        setImmediate(() => this.unmount());
        return;
      case 2:
        return entry('lookup', ops.lookup(c, ino, s1));
      case 4:
        return attr('getattr', ops.getattr(c, ino, fh(b)));
      case 5: {
        const v = this.scratch;
        const set: SetAttrIn = { valid: b, mode: v[0]!, uid: v[1]!, gid: v[2]!, size: v[3]!, atime: { sec: v[4]!, nsec: v[5]! }, mtime: { sec: v[6]!, nsec: v[7]! } };
        return attr('setattr', ops.setattr(c, ino, set, fh(cc)));
      }
      case 6:
        return this.answer('readlink', slot, ops.readlink(c, ino), (t) => B.ll_reply_readlink(slot, t));
      case 7:
        return entry('mknod', ops.mknod(c, ino, s1, b, cc));
      case 8:
        return entry('mkdir', ops.mkdir(c, ino, s1, b));
      case 9:
        return done('unlink', ops.unlink(c, ino, s1));
      case 10:
        return done('rmdir', ops.rmdir(c, ino, s1));
      case 11:
        return entry('symlink', ops.symlink(c, ino, s1, s2));
      case 12:
        return done('rename', ops.rename(c, ino, s1, this.toFs(b), s2));
      case 13:
        return entry('link', ops.link(c, ino, this.toFs(b), s1));
      case 14:
        return this.answer('open', slot, ops.open(c, ino, b), (o) => B.ll_reply_open(slot, o.fh, o.flags ?? 0));
      case 15:
        return this.answer('read', slot, ops.read(c, ino, b, cc, d), (data) => B.ll_reply_buf(slot, data, data.length));
      case 16:
        return this.answer('write', slot, ops.write(c, ino, buf, b, d), (n) => B.ll_reply_write(slot, n));
      case 17:
        return done('flush', ops.flush(c, ino, d));
      case 18:
        return done('release', ops.release(c, ino, d));
      case 19:
        return done('fsync', ops.fsync(c, ino, b !== 0, d));
      case 20:
        return this.answer('opendir', slot, ops.opendir(c, ino), (o) => B.ll_reply_open(slot, o.fh, o.flags ?? 0));
      case 21:
        return this.answer('readdir', slot, ops.readdir(c, ino, b, cc, d), (r) => this.replyDirents(slot, r));
      case 22:
        return done('releasedir', ops.releasedir(c, ino, d));
      case 23:
        return done('fsyncdir', ops.fsyncdir(c, ino, d));
      case 24:
        return this.answer('statfs', slot, ops.statfs(c, ino), (s) => B.ll_reply_statfs(slot, packStatfs(s, this.statfsArr)));
      case 25:
        return done('setxattr', ops.setxattr(c, ino, s1, buf, b));
      case 26:
        return this.answer('getxattr', slot, ops.getxattr(c, ino, s1), (v) => this.xattrReply(slot, v, b));
      case 27:
        return this.answer('listxattr', slot, ops.listxattr(c, ino), (names) => this.xattrReply(slot, Buffer.from(names.map((n) => `${n}\0`).join('')), b));
      case 28:
        return done('removexattr', ops.removexattr(c, ino, s1));
      case 29:
        return done('access', ops.access(c, ino, b));
      case 30:
        return this.answer('create', slot, ops.create(c, ino, s1, b, cc), (r) => B.ll_reply_create(slot, this.pack(r), at, et, r.fh, r.openFlags ?? 0));
      case 31:
        return this.answer('readdirplus', slot, ops.readdirplus(c, ino, b, cc, d), (r) => this.replyDirents(slot, r));
      case 32: // the length comes in scratch[0]
        return done('fallocate', ops.fallocate(c, ino, b, cc, this.scratch[0]!, d));
      default:
        B.ll_reply_err(slot, errnoNumberOf('ENOSYS'));
    }
  }

  /** Writes a readdir answer into the reused reply buffer and sends it (fuse_reply_buf copies it out). */
  private replyDirents(slot: number, r: DirentsReply): void {
    if (this.direntsOut.length < r.bytes) this.direntsOut = Buffer.alloc(r.bytes);
    const out = this.direntsOut.subarray(0, r.bytes);
    r.write(out);
    this.b.ll_reply_buf(slot, out, r.bytes);
  }

  /** getxattr/listxattr: size 0 asks for the length; a smaller buffer than the value is ERANGE. */
  private xattrReply(slot: number, value: Buffer, size: number): void {
    if (size === 0) this.b.ll_reply_xattr(slot, value.length);
    else if (value.length > size) this.b.ll_reply_err(slot, errnoNumberOf('ERANGE'));
    else this.b.ll_reply_buf(slot, value, value.length);
  }

  /**
   * Answers a request with what `p` resolves to (via `ok`) or with its error's errno, once,
   * and within the op's time bound (ETIMEDOUT past it: a bug of ours must not hang a caller).
   */
  private answer<T>(name: OpName, slot: number, p: Promise<T>, ok: (v: T) => void): void {
    const t0 = performance.now();
    let settled = false;
    const ms = this.o.timeouts[name] ?? this.o.timeouts.default;
    const timer = setTimeout(() => {
      if (settled) return;
      settled = true;
      this.o.stats.record(name, performance.now() - t0, true);
      this.o.log.error({ op: name, ms }, 'fuse op did not finish in time; answering ETIMEDOUT');
      this.b.ll_reply_err(slot, errnoNumberOf('ETIMEDOUT'));
    }, ms);
    p.then(
      (v) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.o.stats.record(name, performance.now() - t0);
        if (!this.mounted) return;
        try {
          ok(v);
        } catch (err) {
          // An answer that cannot be encoded fails this one request, not the whole mount.
          this.o.log.error({ op: name, err: (err as Error)?.stack ?? String(err) }, 'fuse reply could not be encoded; answering EIO');
          this.b.ll_reply_err(slot, errnoNumberOf('EIO'));
        }
      },
      (err: unknown) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.o.stats.record(name, performance.now() - t0, true);
        if (this.mounted) this.b.ll_reply_err(slot, -toErrno(err, this.o.log, name));
      },
    );
  }
}

function packStatfs(s: Statfs, out: Float64Array): Float64Array {
  out[0] = s.bsize;
  out[1] = s.frsize;
  out[2] = s.blocks;
  out[3] = s.bfree;
  out[4] = s.bavail;
  out[5] = s.files;
  out[6] = s.ffree;
  out[7] = s.favail;
  out[8] = s.fsid;
  out[9] = s.flag;
  out[10] = s.namemax;
  return out;
}
