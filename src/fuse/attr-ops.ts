// getattr/fgetattr and the setattr family: chmod, chown, truncate/ftruncate, utimens.
// A file open for writing in this mount reports the size including buffered writes; truncate
// goes through the file's write-back so pending data is dropped or landed coherently.
import type { Attr, Cred, SetAttrChanges, TimeArg } from '../client/api.js';
import type { PendingAttrs } from './write-back.js';
import { ROOT_CALLER } from './cred.js';
import { caller, checkPath, credOf, needPath, run, type FsContext } from './context.js';
import type { FuseOps, FuseTime } from './native.js';
import { toStat } from './stat.js';

const NO_ID = 0xffffffff; // (uid_t)-1: leave unchanged

/** Fresh-enough attrs of a path (cache or master), remembered by ino and path. */
export async function attrOfPath(ctx: FsContext, path: string): Promise<Attr> {
  const hit = ctx.attrs.get(path);
  if (hit) return hit;
  checkPath(path);
  const target = ctx.hidden.target(path);
  if (typeof target === 'number') return attrOfIno(ctx, target);
  const attr = await ctx.client.getattr(path);
  ctx.attrs.put(attr, path);
  ctx.files.stateOf(attr.ino)?.committed(attr);
  return attr;
}

export async function attrOfIno(ctx: FsContext, ino: number): Promise<Attr> {
  const hit = ctx.attrs.getIno(ino);
  if (hit) return hit;
  const attr = await ctx.client.getattr(ino);
  ctx.attrs.put(attr);
  ctx.files.stateOf(attr.ino)?.committed(attr);
  return attr;
}

/**
 * The stat the kernel sees: the size includes writes buffered in this mount, and attribute
 * changes waiting for the commit are shown as made.
 */
export function statOf(ctx: FsContext, attr: Attr) {
  const st = ctx.files.stateOf(attr.ino);
  if (!st?.dirty) return toStat(attr);
  return toStat(st.pendingAttrs ? withPending(attr, st.pendingAttrs) : attr, st.size);
}

function withPending(attr: Attr, p: PendingAttrs): Attr {
  const c = p.changes;
  const at = { sec: Math.floor(p.at / 1000), nsec: (p.at % 1000) * 1e6 };
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

/**
 * chmod/chown/utimens: folded into the commit of a file with writes pending in this mount
 * (write-back.ts foldAttrs); else pending writes land first (so their commit cannot change
 * mtime after the new attributes), then the master changes the attributes.
 */
async function setAttrs(ctx: FsContext, path: string, changes: SetAttrChanges, cred: Cred): Promise<void> {
  const ino = ctx.attrs.inoOf(path) ?? ctx.hidden.inoOf(path);
  const st = ino === undefined ? undefined : ctx.files.stateOf(ino);
  if (st?.foldAttrs(changes, cred)) return;
  if (st?.dirty) await st.flushAll();
  const attr = await ctx.client.setattr(ctx.hidden.target(path), changes, cred);
  ctx.attrs.put(attr, path);
}

function timeArg(t: FuseTime, NOW: number, OMIT: number): TimeArg | undefined {
  if (t.nsec === OMIT) return undefined;
  if (t.nsec === NOW) return 'now';
  return { sec: t.sec, nsec: t.nsec };
}

export function attrOps(ctx: FsContext): FuseOps {
  const { client, attrs, files } = ctx;

  async function truncateIno(ino: number, size: number, cred: Cred, path?: string): Promise<Attr> {
    const st = files.stateOf(ino);
    const apply = () => client.truncate(path ?? ino, size, cred);
    const attr = st ? await st.truncate(size, apply) : await apply();
    attrs.put(attr, path);
    return attr;
  }

  return {
    getattr(path, cb) {
      run(ctx, 'getattr', cb, async () => statOf(ctx, await attrOfPath(ctx, path)), () => ({ path }));
    },

    fgetattr(path, fd, cb) {
      run(ctx, 'fgetattr', cb, async () => {
        const of = files.get(fd);
        return statOf(ctx, await attrOfIno(ctx, of.ino));
      }, () => ({ path, fd }));
    },

    chmod(path, mode, cb) {
      const c = caller(ctx);
      run(ctx, 'chmod', cb, async () => {
        checkPath(path);
        await setAttrs(ctx, path, { mode: mode & 0o7777 }, await credOf(ctx, c));
      }, () => ({ path, mode }));
    },

    chown(path, uid, gid, cb) {
      const c = caller(ctx);
      run(ctx, 'chown', cb, async () => {
        checkPath(path);
        // chown(-1, -1) is passed on too: POSIX still wants ctime updated.
        const changes = { uid: uid === NO_ID ? undefined : uid, gid: gid === NO_ID ? undefined : gid };
        await setAttrs(ctx, path, changes, await credOf(ctx, c));
      }, () => ({ path, uid, gid }));
    },

    truncate(path, size, cb) {
      const c = caller(ctx);
      run(ctx, 'truncate', cb, async () => {
        checkPath(path);
        const cred = await credOf(ctx, c);
        const ino = attrs.inoOf(path) ?? (await attrOfPath(ctx, path)).ino;
        // Open here: truncate by inode through its write-back (the name may have moved).
        if (files.stateOf(ino)) await truncateIno(ino, size, cred);
        else attrs.put(await client.truncate(ctx.hidden.target(path), size, cred), path);
      }, () => ({ path, size }));
    },

    ftruncate(path, fd, size, cb) {
      // The kernel checked that fd is open for writing; a later chmod must not make it fail.
      run(ctx, 'ftruncate', cb, async () => {
        const of = files.get(fd);
        of.checkError();
        await truncateIno(of.ino, size, await credOf(ctx, ROOT_CALLER));
      }, () => ({ path, fd, size }));
    },

    utimens(path, atime, mtime, cb) {
      const c = caller(ctx);
      const { UTIME_NOW, UTIME_OMIT } = ctx.Fuse;
      run(ctx, 'utimens', cb, async () => {
        const a = timeArg(atime, UTIME_NOW, UTIME_OMIT);
        const m = timeArg(mtime, UTIME_NOW, UTIME_OMIT);
        if (a === undefined && m === undefined) return; // both UTIME_OMIT: nothing changes, not even ctime
        checkPath(path);
        if (attrs.inoOf(path) === undefined) await attrOfPath(ctx, path);
        await setAttrs(ctx, path, { atime: a, mtime: m }, await credOf(ctx, c));
      }, () => ({ path, atime, mtime }));
    },
  };
}
