// Mounting gfs: a low-level FUSE session (lowlevel.ts, our patched fuse-native) with the
// options that matter for speed and POSIX behaviour, the op families wired to it, a wait until
// the mount answers, and a clean unmount.
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
import { CredResolver } from './cred.js';
import { DirHandles } from './dir-handles.js';
import { dirOps } from './dir-ops.js';
import { fallocateOps } from './fallocate-ops.js';
import { FileTable } from './file-handle.js';
import { fileOps } from './file-ops.js';
import { InodeCache } from './inode-cache.js';
import { linkOps } from './link-ops.js';
import { loadBinding, LowLevelSession, type LowLevelOps } from './lowlevel.js';
import { specialOps } from './special-ops.js';
import { afterUnlinks, UnlinkQueue } from './unlink-queue.js';
import type { FsContext } from './context.js';
import { EXTENT_BYTES } from './write-back.js';
import { xattrOps } from './xattr-ops.js';

export interface MountOptions {
  log?: Logger;
  /**
   * How long attributes and names are cached, in seconds, by the kernel and by this mount
   * (default 1, as MooseFS): changes made by other clients show up within it. This mount's own
   * changes are seen at once, under every name of a file.
   */
  attrTimeoutS?: number;
  /** Write-back memory per open file, default 64 MiB (four 16 MiB extents). */
  writeBackBytesPerFile?: number;
  /** Write-back memory of the whole mount, default 256 MiB. */
  writeBackBytesTotal?: number;
  /** Largest read-ahead window per sequential reader, default 32 MiB (read in 4 MiB pieces across replicas). */
  readAheadBytes?: number;
  /**
   * A read that is not sequential fetches its whole 64 KiB block and puts the rest of it into
   * the kernel's page cache (block-fill.ts); default true. false: it fetches only what was asked.
   */
  fillPageCache?: boolean;
  /** libfuse debug output (every request) on stderr. */
  debug?: boolean;
}

export interface MountHandle {
  dir: string;
  unmount(): Promise<void>;
  /**
   * Resolves once the kernel side of the mount is gone: unmounted from outside
   * (`fusermount -u`, `umount`) or by unmount().
   */
  detached: Promise<void>;
  /** Count and latency of each FUSE op answered so far. */
  stats(): ReturnType<OpStats['snapshot']>;
  /** Blocks fetched for reads that are not sequential, and the bytes of them given to the page cache. */
  fillStats(): { fetches: number; filledBytes: number; fillErrors: number };
}

/*
 * Time bounds. The client bounds every RPC itself (client/options.ts): a master call has a
 * 10 s deadline and is retried for at most 30 s, so one master operation ends within ~40 s; a
 * chunk piece gets 6 attempts of (10 s + 1 s per MiB) plus backoff, i.e. about 2.5 min for a
 * 4 MiB piece, while a flush of the per-file buffer (32 MiB) runs its pieces in parallel. Our
 * bounds sit well above those, so they only fire if something is wrong in our own code, yet a
 * dead cluster still cannot hang a caller forever:
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

const OP_TIMEOUTS = {
  default: META_OP_TIMEOUT_MS,
  read: DATA_OP_TIMEOUT_MS,
  write: DATA_OP_TIMEOUT_MS,
  flush: DATA_OP_TIMEOUT_MS,
  fsync: DATA_OP_TIMEOUT_MS,
  release: DATA_OP_TIMEOUT_MS,
  setattr: DATA_OP_TIMEOUT_MS, // a truncate or time change may land buffered data first
  create: DATA_OP_TIMEOUT_MS, // O_TRUNC of an existing file lands data first
  fallocate: DATA_OP_TIMEOUT_MS, // zeroing a range writes it
};

/**
 * The -o options. big_writes + max_write: 128 KiB writes instead of 4 KiB (LIMITS.md: 113 ->
 * ~620 MB/s). max_background/congestion_threshold: 48 requests in flight instead of 12.
 * default_permissions: the kernel checks permissions from our attrs. allow_other: every user
 * of the machine sees the mount (root needs no user_allow_other). nonempty: mounting over a
 * directory with leftovers (e.g. ./mnt) works.
 */
function mountOptions(debug: boolean): string[] {
  return [
    'allow_other',
    'default_permissions',
    'fsname=gfs',
    'subtype=gfs',
    'big_writes',
    'max_write=131072',
    'max_read=131072',
    'max_background=64',
    'congestion_threshold=48',
    'nonempty',
    ...(debug ? ['debug'] : []),
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

/**
 * Largest read-ahead window of one reader. Every window size a reader grows through is fresh
 * memory the first time (a page fault per 4 KiB, ~18 us here): with 32 MiB the first 512 MiB
 * read faulted 44,000 pages (170 MiB) for no more throughput than 8 MiB gives (cold 512 MiB
 * reads, three pairs: 264/258/227 against 254/257/305 MB/s; peak RSS 330-350 against 170-200 MB).
 */
const READ_AHEAD_DEFAULT_BYTES = 8 * MiB;

export async function mountGfs(client: GfsClientApi, dir: string, opts: MountOptions = {}): Promise<MountHandle> {
  const log = opts.log ?? silentLogger;
  const attrTimeoutS = opts.attrTimeoutS ?? 1;
  if (!Number.isFinite(attrTimeoutS) || attrTimeoutS < 0) throw new GfsError('EINVAL', `attrTimeoutS must be >= 0`);
  const perFile = checkPositive('writeBackBytesPerFile', opts.writeBackBytesPerFile ?? 64 * MiB, EXTENT_BYTES);
  const total = checkPositive('writeBackBytesTotal', opts.writeBackBytesTotal ?? 256 * MiB, EXTENT_BYTES);
  const readAhead = checkPositive('readAheadBytes', opts.readAheadBytes ?? READ_AHEAD_DEFAULT_BYTES, 0);
  loadBinding(); // fails early, with the fix in its message, on an unpatched build
  const mnt = path.resolve(dir);

  await cleanStaleMount(mnt);
  await mkdir(mnt, { recursive: true });
  // The mount's root is whatever the master shows as "/" to this client (an export's subtree).
  const root = await client.getattr('/');

  const cache = new InodeCache(attrTimeoutS * 1000);
  let session: LowLevelSession | undefined;
  const files = new FileTable(client, log, {
    writeBackBytesPerFile: Math.min(perFile, total),
    writeBackBytesTotal: total,
    readAheadBytes: readAhead,
    readAheadBytesTotal: Math.max(64 * MiB, readAhead * 8),
    storeData: opts.fillPageCache === false ? undefined : (ino, off, data) => (session ? session.storeData(ino, off, data) : Promise.resolve(-1)),
    kernelSize: (ino) => cache.latest(ino)?.size,
    // A commit changed size and times on the master: this mount's pages still hold the data
    // (its writes went through them), the kernel's cached attrs do not.
    onAttr: (attr) => {
      cache.put(attr);
      cache.sawData(attr);
      session?.invalidateAttrs(attr.ino);
    },
  });
  // Directories a change touched come back with its reply: the cache takes them as they are.
  client.observeAttrs((a) => cache.put(a));
  const ctx: FsContext = {
    client,
    log,
    cache,
    files,
    dirs: new DirHandles({ validS: attrTimeoutS, rootIno: root.ino }),
    creds: new CredResolver(),
    debug: !!opts.debug,
    stats: new OpStats(),
    noCaps: new Map(),
    unlinks: new UnlinkQueue((entries) => client.unlinkBatch(entries), log),
  };
  const ops: LowLevelOps = afterUnlinks(
    {
      ...attrOps(ctx),
      ...dirOps(ctx),
      ...fileOps(ctx),
      ...fallocateOps(ctx),
      ...linkOps(ctx),
      ...xattrOps(ctx),
      ...specialOps(ctx),
    },
    ctx.unlinks,
  );

  let gone!: () => void;
  const goneP = new Promise<void>((r) => (gone = r));
  try {
    session = LowLevelSession.mount(mnt, ops, {
      options: mountOptions(!!opts.debug),
      attrTimeoutS,
      entryTimeoutS: attrTimeoutS,
      rootIno: root.ino,
      timeouts: OP_TIMEOUTS,
      log,
      stats: ctx.stats,
      onGone: () => gone(),
    });
  } catch (err) {
    throw new GfsError('EIO', `mounting ${mnt} failed: ${(err as Error).message}`);
  }
  ctx.session = session;
  log.info({ dir: mnt, options: mountOptions(!!opts.debug).join(','), rootIno: root.ino }, 'mounted');

  let unmounting: Promise<void> | undefined;
  const handle: MountHandle = {
    dir: mnt,
    unmount: () => (unmounting ??= unmount()),
    detached: goneP,
    stats: () => ctx.stats.snapshot(),
    fillStats: () => ({ fetches: files.fills.fetches, filledBytes: files.fills.filledBytes, fillErrors: files.fills.fillErrors }),
  };

  async function unmount(): Promise<void> {
    try {
      const failed = await withDeadline(files.flushEverything(), UNMOUNT_FLUSH_TIMEOUT_MS, 'flushing open files before unmount');
      if (failed > 0) log.warn({ failed }, 'some open files could not be flushed before unmount');
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'flush before unmount did not finish');
    }
    await files.fills.allIdle(); // bounded; a fill's worker must not outlive the session
    // Detached from outside first (fusermount -u, a lazy umount): the session is gone already.
    session!.unmount();
    ctx.session = undefined; // background work that needs the mount stops (special-ops.ts)
    await withDeadline(goneP, UNMOUNT_CMD_TIMEOUT_MS, 'ending the fuse session').catch(() => undefined);
    if (isMountPoint(mnt)) await detach(mnt);
    await withDeadline(ctx.unlinks.all(), UNMOUNT_FLUSH_TIMEOUT_MS, 'background unlinks before unmount').catch((err: unknown) =>
      log.warn({ err: (err as Error).message }, 'background unlinks did not finish before unmount'),
    );
    await files.releasesDone();
    files.close();
    log.info({ dir: mnt, fuseOps: ctx.stats.snapshot() }, 'unmounted');
  }

  // Usable means a stat of the root goes through the kernel and our getattr.
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
