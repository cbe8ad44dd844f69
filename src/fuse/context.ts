// What every op family shares: the client, the caches, open files and directories, the
// caller's identity, and the session (once mounted) for cache invalidations in the kernel.
import type { Cred, GfsClientApi } from '../client/api.js';
import { GfsError } from '../common/errors.js';
import type { Logger } from '../common/logger.js';
import type { OpStats } from '../common/op-stats.js';
import type { CredResolver } from './cred.js';
import type { DirHandles } from './dir-handles.js';
import type { FileTable } from './file-handle.js';
import type { InodeCache } from './inode-cache.js';
import type { Caller, LowLevelSession } from './lowlevel.js';
import type { UnlinkQueue } from './unlink-queue.js';

export interface FsContext {
  readonly client: GfsClientApi;
  readonly log: Logger;
  readonly cache: InodeCache;
  readonly files: FileTable;
  readonly dirs: DirHandles;
  readonly creds: CredResolver;
  readonly debug: boolean;
  /** Count and latency of every FUSE op this mount answered. */
  readonly stats: OpStats;
  /** ino -> when "security.capability" was last known absent (see xattr-ops.ts). */
  readonly noCaps: Map<number, number>;
  /** Unlinks answered before the master applied them (unlink-queue.ts). */
  readonly unlinks: UnlinkQueue;
  /** Set once mounted (ops only run after that), and unset at unmount. */
  session?: LowLevelSession;
}

export function credOf(ctx: FsContext, c: Caller): Promise<Cred> {
  return ctx.creds.cred(c);
}

/**
 * Runs a change of the names in `dirs`. When it fails, whether the master made it is not known
 * (a reply lost to a master crash, a retried create answered EEXIST): the listings this mount
 * keeps of them can no longer say a name is absent, so they are dropped.
 */
export async function changingNames<T>(ctx: FsContext, dirs: number | readonly number[], change: () => Promise<T>): Promise<T> {
  try {
    return await change();
  } catch (err) {
    for (const dir of typeof dirs === 'number' ? [dirs] : dirs) ctx.cache.dropListing(dir);
    throw err;
  }
}

/** An entry name from the kernel: it checked NAME_MAX already, but says so in bytes only. */
export function checkName(name: string): void {
  if (Buffer.byteLength(name) > 255) throw new GfsError('ENAMETOOLONG', 'name longer than 255 bytes');
}
