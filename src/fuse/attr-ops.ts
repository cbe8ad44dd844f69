// getattr and setattr (chmod, chown, truncate, utimens in one request). A file open for
// writing in this mount reports the size including buffered writes and the attribute changes
// folded into its next commit; truncate goes through the file's write-back so pending data is
// dropped or landed coherently.
import type { Attr, Cred, SetAttrChanges, TimeArg } from '../client/api.js';
import { credOf, type FsContext } from './context.js';
import { ROOT_CALLER } from './cred.js';
import { SET_ATTR, type LowLevelOps, type SetAttrIn } from './lowlevel.js';
import { timeOfMs, toStat, type FuseStat } from './stat.js';
import type { PendingAttrs } from './write-back.js';

/** Fresh-enough attrs of an inode (cache or master). */
export async function attrOf(ctx: FsContext, ino: number): Promise<Attr> {
  const hit = ctx.cache.get(ino);
  if (hit) return hit;
  const attr = await ctx.client.getattr(ino);
  ctx.cache.put(attr);
  ctx.files.stateOf(ino)?.committed(attr);
  return attr;
}

/**
 * The stat the kernel sees: the size includes writes buffered in this mount, and attribute
 * changes waiting for the commit are shown as made.
 */
export function statOf(ctx: FsContext, attr: Attr): FuseStat {
  const st = ctx.files.stateOf(attr.ino);
  if (!st?.dirty) return toStat(attr);
  return toStat(st.pendingAttrs ? withPending(attr, st.pendingAttrs) : attr, st.size);
}

function withPending(attr: Attr, p: PendingAttrs): Attr {
  const c = p.changes;
  const at = timeOfMs(p.at);
  const time = (t: TimeArg | undefined, cur: Attr['mtime']) => (t === undefined ? cur : t === 'now' ? at : t);
  return {
    ...attr,
    mode: c.mode !== undefined ? (attr.mode & ~0o7777) | (c.mode & 0o7777) : attr.mode,
    uid: c.uid ?? attr.uid,
    gid: c.gid ?? attr.gid,
    atime: time(c.atime, attr.atime),
    mtime: time(c.mtime, attr.mtime),
    ctime: at,
  };
}

/** The changes of a setattr request, size apart. */
function changesOf(set: SetAttrIn): SetAttrChanges {
  const v = set.valid;
  const c: SetAttrChanges = {};
  if (v & SET_ATTR.MODE) c.mode = set.mode & 0o7777;
  if (v & SET_ATTR.UID) c.uid = set.uid;
  if (v & SET_ATTR.GID) c.gid = set.gid;
  if (v & SET_ATTR.ATIME) c.atime = v & SET_ATTR.ATIME_NOW ? 'now' : set.atime;
  if (v & SET_ATTR.MTIME) c.mtime = v & SET_ATTR.MTIME_NOW ? 'now' : set.mtime;
  return c;
}

/** Truncate through the inode's write-back when it is open here (pending data first). */
export async function truncateFile(ctx: FsContext, ino: number, size: number, cred: Cred): Promise<Attr> {
  const { client, cache, files } = ctx;
  const st = files.stateOf(ino);
  const apply = () => client.truncate(ino, size, cred);
  // Fills of the kernel's pages fetched before the truncate must not land after it (they
  // would bring back cut data and the old size).
  await files.fills.discard(ino);
  const attr = st ? await st.truncate(size, apply) : await apply();
  cache.put(attr); // the new size bounds fills from here on
  await files.fills.discard(ino);
  return attr;
}

export function attrOps(ctx: FsContext): Pick<LowLevelOps, 'getattr' | 'setattr'> {
  const { client, cache, files } = ctx;

  /**
   * Attribute changes: folded into the commit of a file with writes pending in this mount
   * (write-back.ts foldAttrs); else pending writes land first (so their commit cannot change
   * mtime after the new attributes), then the master changes them.
   */
  async function change(ino: number, changes: SetAttrChanges, cred: Cred): Promise<Attr | undefined> {
    const st = files.stateOf(ino);
    if (st?.foldAttrs(changes, cred)) {
      // After this answer is written: the caller (tar, cp -p) goes on with its next call
      // while the data is being sent, instead of waiting for the send.
      setImmediate(() => st.landSoon());
      return undefined;
    }
    if (st?.dirty) await st.flushAll();
    const attr = await client.setattr(ino, changes, cred);
    cache.put(attr);
    return attr;
  }

  return {
    async getattr(c, ino) {
      return statOf(ctx, await attrOf(ctx, ino));
    },

    async setattr(c, ino, set, fh) {
      // Through a handle (ftruncate, futimens ...) the kernel checked the access at open: a
      // later chmod must not make it fail, as POSIX has it. By name, the caller's cred counts.
      const cred = await credOf(ctx, fh !== undefined && set.valid & SET_ATTR.SIZE ? ROOT_CALLER : c);
      let attr: Attr | undefined;
      if (set.valid & SET_ATTR.SIZE) attr = await truncateFile(ctx, ino, set.size, cred);
      const changes = changesOf(set);
      if (Object.keys(changes).length > 0 || !(set.valid & SET_ATTR.SIZE)) {
        const ownCred = fh !== undefined && set.valid & SET_ATTR.SIZE ? await credOf(ctx, c) : cred;
        attr = (await change(ino, changes, ownCred)) ?? attr;
      }
      return statOf(ctx, attr ?? (await attrOf(ctx, ino)));
    },
  };
}
