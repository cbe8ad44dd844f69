// What every op family shares: the client, caches, open files, the caller's identity, and the
// glue from async functions to fuse-native callbacks (errors -> errno via errno-table.ts).
import type { Cred, GfsClientApi } from '../client/api.js';
import { GfsError } from '../common/errors.js';
import { NAME_MAX, PATH_MAX } from '../common/limits.js';
import type { Logger } from '../common/logger.js';
import type { OpStats } from '../common/op-stats.js';
import type { AttrCache } from './attr-cache.js';
import { callerOf, type CredResolver } from './cred.js';
import { toErrno } from './errno-table.js';
import type { FileTable } from './file-handle.js';
import type { HiddenFiles } from './hidden-files.js';
import type { FuseCaller, FuseClass, FuseInstance } from './native.js';

export interface FsContext {
  readonly client: GfsClientApi;
  readonly log: Logger;
  readonly attrs: AttrCache;
  readonly files: FileTable;
  readonly creds: CredResolver;
  /** Open files unlinked in this mount (see hidden-files.ts). */
  readonly hidden: HiddenFiles;
  readonly Fuse: FuseClass;
  /** Set once the Fuse instance exists (ops only run after that). */
  fuse?: FuseInstance;
  readonly debug: boolean;
  /** Count and latency of every FUSE op this mount answered. */
  readonly stats: OpStats;
  /** ino -> when "security.capability" was last known absent (see xattr-ops.ts). */
  readonly noCaps: Map<number, number>;
}

/** The caller of the op being dispatched; call synchronously at the op's entry. */
export function caller(ctx: FsContext): FuseCaller {
  return callerOf(ctx.fuse);
}

export function credOf(ctx: FsContext, c: FuseCaller): Promise<Cred> {
  return ctx.creds.cred(c);
}

/** NAME_MAX per component and PATH_MAX overall, in bytes (the kernel lets up to 1024 through). */
export function checkPath(path: string): void {
  if (path.length <= NAME_MAX && Buffer.byteLength(path) <= NAME_MAX) return;
  if (Buffer.byteLength(path) >= PATH_MAX) throw new GfsError('ENAMETOOLONG', `path longer than ${PATH_MAX - 1} bytes`);
  for (const part of path.split('/')) {
    if (Buffer.byteLength(part) > NAME_MAX) throw new GfsError('ENAMETOOLONG', `name longer than ${NAME_MAX} bytes`);
  }
}

type Cb<T> = (err: number, value?: T) => void;

/** Runs `fn`, records its latency under `op`, and hands the outcome to exactly one of ok/fail. */
function settle<T>(ctx: FsContext, op: string, fn: () => Promise<T>, ok: (v: T) => void, fail: (errno: number) => void, detail?: () => Record<string, unknown>): void {
  const t = performance.now();
  const failed = (err: unknown) => {
    ctx.stats.record(op, performance.now() - t, true);
    fail(toErrno(err, ctx.log, op, detail?.()));
  };
  let p: Promise<T>;
  try {
    p = fn();
  } catch (err) {
    failed(err);
    return;
  }
  p.then((v) => {
    ctx.stats.record(op, performance.now() - t);
    ok(v);
  }, failed);
}

/** Runs `fn` and answers `cb` exactly once: (0, value) or (-errno). */
export function run<T>(ctx: FsContext, op: string, cb: Cb<T>, fn: () => Promise<T>, detail?: () => Record<string, unknown>): void {
  settle(ctx, op, fn, (v) => cb(0, v), (errno) => cb(errno), detail);
}

/** Like run() for ops whose answer is a byte count (read, write): cb(n) or cb(-errno). */
export function runCount(ctx: FsContext, op: string, cb: (n: number) => void, fn: () => Promise<number>, detail?: () => Record<string, unknown>): void {
  settle(ctx, op, fn, cb, cb, detail);
}

/** A null path (open-but-unlinked file, flag_nullpath_ok) where a path op needs one. */
export function needPath(path: string | null): string {
  if (path === null) throw new GfsError('ENOENT', 'the file has no name (unlinked)');
  return path;
}
