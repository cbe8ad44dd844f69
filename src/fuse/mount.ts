// Mounting gfs: builds the fuse-native instance (our patched build) with the options that
// matter for speed and POSIX behaviour, waits until the mount answers, and unmounts cleanly.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, stat } from 'node:fs/promises';
import path from 'node:path';
import type { GfsClientApi } from '../client/api.js';
import { withDeadline } from '../common/deadline.js';
import { GfsError } from '../common/errors.js';
import { MiB } from '../common/limits.js';
import { silentLogger, type Logger } from '../common/logger.js';
import { OpStats } from '../common/op-stats.js';
import { attrOps } from './attr-ops.js';
import { AttrCache } from './attr-cache.js';
import { CredResolver } from './cred.js';
import { dirOps } from './dir-ops.js';
import { FileTable } from './file-handle.js';
import { HiddenFiles } from './hidden-files.js';
import { fileOps } from './file-ops.js';
import { linkOps } from './link-ops.js';
import { loadFuse, type FuseOps, type FuseTimeout } from './native.js';
import { specialOps } from './special-ops.js';
import type { FsContext } from './context.js';
import { EXTENT_BYTES } from './write-back.js';
import { xattrOps } from './xattr-ops.js';

export interface MountOptions {
  log?: Logger;
  /** Attribute/entry cache lifetime in seconds (kernel entry cache + our attr cache), default 1. */
  attrTimeoutS?: number;
  /** Write-back memory per open file, default 64 MiB (four 16 MiB extents). */
  writeBackBytesPerFile?: number;
  /** Write-back memory of the whole mount, default 256 MiB. */
  writeBackBytesTotal?: number;
  /** Largest read-ahead window per sequential reader, default 32 MiB (read in 4 MiB pieces across replicas). */
  readAheadBytes?: number;
  /** libfuse debug output (every request) on stderr. */
  debug?: boolean;
}

export interface MountHandle {
  dir: string;
  unmount(): Promise<void>;
  /** Count and latency of each FUSE op answered so far. */
  stats(): ReturnType<OpStats['snapshot']>;
}

/*
 * Time bounds. fuse-native answers ETIMEDOUT when an op's callback has not come within its
 * timeout (15 s by default), which would fail a slow but healthy flush of a large buffer. The
 * client bounds every RPC itself (client/options.ts): a master call has a 10 s deadline and is
 * retried for at most 30 s, so one master operation ends within ~40 s; a chunk piece gets 6
 * attempts of (10 s + 1 s per MiB) plus backoff, i.e. about 2.5 min for a 4 MiB piece, while
 * a flush of the per-file buffer (32 MiB) runs its pieces in parallel. Our bounds sit well
 * above those, so they only fire if something is wrong in our own code, yet a dead cluster
 * still cannot hang a caller forever:
 *  - namespace ops (at most ~3 master operations each):          META_OP_TIMEOUT_MS = 3 min
 *  - ops that move or wait for data (read/write/flush/fsync/...): DATA_OP_TIMEOUT_MS = 10 min
 */
export const META_OP_TIMEOUT_MS = 3 * 60_000;
export const DATA_OP_TIMEOUT_MS = 10 * 60_000;
/** mountGfs gives up if the new mount does not answer a stat within this. */
const MOUNT_READY_TIMEOUT_MS = 30_000;
/** unmount: landing buffered data, then each unmount command. */
const UNMOUNT_FLUSH_TIMEOUT_MS = 120_000;
const UNMOUNT_CMD_TIMEOUT_MS = 10_000;

const FUSE_TIMEOUTS: FuseTimeout = {
  default: META_OP_TIMEOUT_MS,
  read: DATA_OP_TIMEOUT_MS,
  write: DATA_OP_TIMEOUT_MS,
  flush: DATA_OP_TIMEOUT_MS,
  fsync: DATA_OP_TIMEOUT_MS,
  release: DATA_OP_TIMEOUT_MS,
  truncate: DATA_OP_TIMEOUT_MS,
  ftruncate: DATA_OP_TIMEOUT_MS,
  utimens: DATA_OP_TIMEOUT_MS, // may land buffered data first
  create: DATA_OP_TIMEOUT_MS, // O_TRUNC of an existing file lands data first
};

/**
 * The -o options beyond fuse-native's own. big_writes + max_write: 128 KiB writes instead of
 * 4 KiB (LIMITS.md: 113 -> ~620 MB/s). max_background/congestion_threshold: 48 requests in
 * flight instead of 12. use_ino: our inode numbers (hard links share st_ino). No hard_remove:
 * libfuse then keeps a (hidden) name for an open unlinked file, which we map to its inode
 * (hidden-files.ts) so fstat keeps working. attr_timeout=0: see attr-cache.ts (kernel attrs are per name in libfuse 2). nonempty:
 * mounting over a directory with leftovers (e.g. ./mnt) works.
 */
function extraOptions(attrTimeoutS: number): string[] {
  return [
    'big_writes',
    'max_write=131072',
    'max_read=131072',
    'max_background=64',
    'congestion_threshold=48',
    'use_ino',
    'attr_timeout=0',
    `entry_timeout=${attrTimeoutS}`,
    'negative_timeout=0',
    'nonempty',
  ];
}

function run(cmd: string, args: string[], timeoutMs: number): Promise<{ ok: boolean; out: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: timeoutMs, killSignal: 'SIGKILL' }, (err, stdout, stderr) => {
      resolve({ ok: !err, out: `${stdout}${stderr}${err && !stderr ? err.message : ''}` });
    });
  });
}

/** Is `dir` a mount point right now (per /proc/self/mountinfo)? */
export function isMountPoint(dir: string): boolean {
  const target = path.resolve(dir);
  let info: string;
  try {
    info = readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return false;
  }
  for (const line of info.split('\n')) {
    const field = line.split(' ')[4];
    if (field && field.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))) === target) return true;
  }
  return false;
}

async function detach(dir: string): Promise<boolean> {
  for (const [cmd, args] of [
    ['fusermount', ['-uz', dir]],
    ['fusermount3', ['-uz', dir]],
    ['umount', ['-l', dir]],
  ] as const) {
    await run(cmd, [...args], UNMOUNT_CMD_TIMEOUT_MS);
    if (!isMountPoint(dir)) return true;
  }
  return !isMountPoint(dir);
}

/**
 * A mount whose daemon died answers "Transport endpoint is not connected" (ENOTCONN); it is
 * detached lazily so a new mount can take its place. A live mount is left alone.
 */
export async function cleanStaleMount(dir: string): Promise<void> {
  const abs = path.resolve(dir);
  if (!isMountPoint(abs)) return;
  // stat in a child process: a hung mount must not block one of our own threads.
  const probe = await run('stat', ['-c', '%i', '--', abs], 5000);
  if (probe.ok) return;
  if (/not connected|connection abort|Input\/output error|timed out|SIGKILL|killed/i.test(probe.out) || probe.out === '') {
    await detach(abs);
  }
}

/**
 * Unmounts a gfs mount made by another process (`gfs umount DIR`): a regular unmount first,
 * a lazy one if the mount is busy or dead. Resolves once `dir` is no longer a mount point.
 */
export async function umountDir(dir: string): Promise<void> {
  const abs = path.resolve(dir);
  if (!isMountPoint(abs)) return;
  for (const cmd of ['fusermount', 'fusermount3', 'umount']) {
    await run(cmd, cmd === 'umount' ? [abs] : ['-u', abs], UNMOUNT_CMD_TIMEOUT_MS);
    if (!isMountPoint(abs)) return;
  }
  if (!(await detach(abs))) throw new GfsError('EBUSY', `could not unmount ${abs}`);
}

function checkPositive(name: string, v: number, min: number): number {
  if (!Number.isFinite(v) || v < min) throw new GfsError('EINVAL', `mount option ${name} must be >= ${min}, got ${v}`);
  return v;
}

export async function mountGfs(client: GfsClientApi, dir: string, opts: MountOptions = {}): Promise<MountHandle> {
  const log = opts.log ?? silentLogger;
  const attrTimeoutS = opts.attrTimeoutS ?? 1;
  if (!Number.isFinite(attrTimeoutS) || attrTimeoutS < 0) throw new GfsError('EINVAL', `attrTimeoutS must be >= 0`);
  const perFile = checkPositive('writeBackBytesPerFile', opts.writeBackBytesPerFile ?? 64 * MiB, EXTENT_BYTES);
  const total = checkPositive('writeBackBytesTotal', opts.writeBackBytesTotal ?? 256 * MiB, EXTENT_BYTES);
  const readAhead = checkPositive('readAheadBytes', opts.readAheadBytes ?? 32 * MiB, 0);
  const Fuse = loadFuse();
  const mnt = path.resolve(dir);

  await cleanStaleMount(mnt);
  await mkdir(mnt, { recursive: true });

  const attrs = new AttrCache(attrTimeoutS * 1000);
  // Directories a change touched come back with its reply: the cache takes them as they are.
  client.observeAttrs((a) => attrs.put(a));
  const files = new FileTable(client, log, {
    writeBackBytesPerFile: Math.min(perFile, total),
    writeBackBytesTotal: total,
    readAheadBytes: readAhead,
    readAheadBytesTotal: Math.max(64 * MiB, readAhead * 8),
    onAttr: (attr) => attrs.put(attr),
  });
  const hidden = new HiddenFiles(client, attrs, log);
  const ctx: FsContext = {
    client,
    log,
    attrs,
    hidden,
    files,
    creds: new CredResolver(),
    Fuse,
    debug: !!opts.debug,
    stats: new OpStats(),
    noCaps: new Map(),
  };
  const ops: FuseOps = {
    ...attrOps(ctx),
    ...dirOps(ctx),
    ...fileOps(ctx),
    ...linkOps(ctx),
    ...xattrOps(ctx),
    ...specialOps(ctx),
  };

  const extra = extraOptions(attrTimeoutS);
  class GfsFuse extends Fuse {
    override _fuseOptions(): string {
      const base = super._fuseOptions();
      return base ? `${base},${extra.join(',')}` : `-o${extra.join(',')}`;
    }
  }
  const fuse = new GfsFuse(mnt, ops, {
    timeout: FUSE_TIMEOUTS,
    debug: !!opts.debug,
    mkdir: true,
    allowOther: true, // root needs no user_allow_other in /etc/fuse.conf
    defaultPermissions: true, // the kernel checks permissions from our attrs
    fsname: 'gfs',
    subtype: 'gfs',
  });
  ctx.fuse = fuse;

  await new Promise<void>((resolve, reject) => {
    fuse.mount((err) => (err ? reject(new GfsError('EIO', `mounting ${mnt} failed: ${err.message}`)) : resolve()));
  });
  log.info({ dir: mnt, options: fuse._fuseOptions() }, 'mounted');

  let unmounting: Promise<void> | undefined;
  const handle: MountHandle = {
    dir: mnt,
    unmount: () => (unmounting ??= unmount()),
    stats: () => ctx.stats.snapshot(),
  };

  async function unmount(): Promise<void> {
    try {
      const failed = await withDeadline(files.flushEverything(), UNMOUNT_FLUSH_TIMEOUT_MS, 'flushing open files before unmount');
      if (failed > 0) log.warn({ failed }, 'some open files could not be flushed before unmount');
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'flush before unmount did not finish');
    }
    await new Promise<void>((resolve) => {
      fuse.unmount((err) => {
        if (err) log.warn({ dir: mnt, err: err.message }, 'unmount failed; detaching lazily');
        resolve();
      });
    });
    if (isMountPoint(mnt)) await detach(mnt);
    await hidden.close().catch(() => undefined);
    await files.releasesDone();
    files.close();
    log.info({ dir: mnt, fuseOps: ctx.stats.snapshot() }, 'unmounted');
  }

  // Usable means a stat of the root goes through the kernel, libfuse and our getattr.
  try {
    const [mine, parent] = await withDeadline(
      Promise.all([stat(mnt), stat(path.dirname(mnt))]),
      MOUNT_READY_TIMEOUT_MS,
      `waiting for the mount at ${mnt}`,
    );
    if (mine.dev === parent.dev && mnt !== '/') throw new GfsError('EIO', `${mnt} is not a mount after mounting`);
  } catch (err) {
    await handle.unmount().catch(() => undefined);
    throw err;
  }
  return handle;
}
