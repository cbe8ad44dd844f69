// mknod (fifos, character/block devices, sockets: inodes with their rdev, never opened by
// gfs), statfs and access.
import { constants as fsc } from 'node:fs';
import { GfsError } from '../common/errors.js';
import { NAME_MAX } from '../common/limits.js';
import type { StatFs } from '../client/api.js';
import { attrOf, statOf } from './attr-ops.js';
import { changingNames, checkName, credOf, type FsContext } from './context.js';
import type { LowLevelOps } from './lowlevel.js';

const FRSIZE = 4096;
/** statfs answers are reused this long (df and dbench ask often; capacity moves slowly). */
const STATFS_TTL_MS = 1000;
/**
 * An older answer, up to this age, is still given at once while a fresh one is fetched in the
 * background. `find` asks statfs once per walk, right when its readdir-ahead has the master
 * busy listing directories: waiting behind those listings was a fifth of a cold `find`.
 */
const STATFS_STALE_MAX_MS = 30_000;
/**
 * While the mount is in use, the answer is also refreshed this often in the background (and
 * fetched once at mount), so it never ages past STATFS_STALE_MAX_MS: statfs comes at moments
 * the master is busiest, and a cold `find` after a long `tar` (no statfs in between) waited
 * 10-17 ms for it behind the listings its readdir-ahead had asked for.
 */
const STATFS_REFRESH_MS = 10_000;
/** ...until neither statfs nor any other op has been asked for this long: an idle mount stops asking the master. */
const STATFS_KEEP_FRESH_MS = 5 * 60_000;

export function specialOps(ctx: FsContext): Pick<LowLevelOps, 'mknod' | 'statfs' | 'access'> {
  const { client, cache } = ctx;
  /** The last statfs answer, when it came, and the fetch under way (one at a time). */
  let statfsKnown: StatFs | undefined;
  let statfsAt = 0;
  let statfsFetch: Promise<StatFs> | undefined;
  /** When the mount was last seen in use: statfs asked, or other ops answered since the last look. */
  let usedAt = Date.now();
  let opsSeen = 0;
  let refreshTimer: NodeJS.Timeout | undefined;
  const fetchStatfs = (): Promise<StatFs> =>
    (statfsFetch ??= client
      .statfs()
      .then((s) => {
        statfsKnown = s;
        statfsAt = Date.now();
        keepFresh();
        return s;
      })
      .finally(() => (statfsFetch = undefined)));
  // One timer at most, and none once unmounted. A failed refresh does not re-arm it (the
  // master may be gone): the next ask fetches, and a success arms it again.
  function keepFresh(): void {
    if (refreshTimer) return;
    refreshTimer = setTimeout(() => {
      refreshTimer = undefined;
      const ops = ctx.stats.total();
      if (ops !== opsSeen) usedAt = Date.now();
      opsSeen = ops;
      if (ctx.session && Date.now() - usedAt <= STATFS_KEEP_FRESH_MS) fetchStatfs().catch(() => undefined);
    }, STATFS_REFRESH_MS);
    refreshTimer.unref();
  }
  fetchStatfs().catch(() => undefined); // df (or find) right after mounting finds it at hand

  return {
    async mknod(c, parent, name, mode, rdev) {
      checkName(name);
      const cred = await credOf(ctx, c);
      const attr = await changingNames(ctx, parent, () => client.mknod({ parent, name }, mode, rdev, cred));
      cache.put(attr);
      cache.added(parent, name, attr.ino);
      return statOf(ctx, attr);
    },

    async statfs() {
      usedAt = Date.now();
      const age = usedAt - statfsAt;
      let s: StatFs;
      if (!statfsKnown || age > STATFS_STALE_MAX_MS) {
        s = await fetchStatfs();
      } else {
        // A failed refresh leaves the old answer; the next call past the TTL asks again.
        if (age > STATFS_TTL_MS) fetchStatfs().catch(() => undefined);
        s = statfsKnown;
      }
      const bsize = s.blockSize > 0 ? s.blockSize : FRSIZE;
      const blocks = Math.floor(s.totalBytes / bsize);
      const bfree = Math.min(blocks, Math.floor(s.freeBytes / bsize));
      const files = Math.max(s.files + s.freeFiles, s.files);
      return {
        bsize,
        frsize: bsize,
        blocks,
        bfree,
        bavail: bfree,
        files,
        ffree: s.freeFiles,
        favail: s.freeFiles,
        fsid: 0,
        flag: 0,
        namemax: s.nameMax > 0 ? Math.min(s.nameMax, NAME_MAX) : NAME_MAX,
      };
    },

    // With default_permissions the kernel checks permissions itself and rarely asks; when it
    // does, existence is what is left to answer (root's X_OK needs an x bit somewhere).
    async access(c, ino, mask) {
      const attr = await attrOf(ctx, ino);
      if ((mask & fsc.X_OK) !== 0 && c.uid === 0 && (attr.mode & 0o170000) !== 0o040000 && (attr.mode & 0o111) === 0) {
        throw new GfsError('EACCES', 'no execute permission');
      }
    },
  };
}
