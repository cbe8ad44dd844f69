// unlink, rename, link, symlink, readlink. Entries are addressed by directory inode and name,
// so a rename elsewhere in the tree never sends a change to the wrong place. Each keeps the
// caches exact: listings follow the change, the inodes involved get the master's new attrs.
import { GfsError } from '../common/errors.js';
import { SYMLINK_MAX } from '../common/limits.js';
import { statOf } from './attr-ops.js';
import { changingNames, checkName, credOf, type FsContext } from './context.js';
import type { LowLevelOps } from './lowlevel.js';
import { isDir, timeOfMs } from './stat.js';

export function linkOps(ctx: FsContext): Pick<LowLevelOps, 'unlink' | 'rename' | 'link' | 'symlink' | 'readlink'> {
  const { client, cache } = ctx;

  /**
   * A directory's mtime and ctime move to now, as the master is about to set them (the kernel
   * asks for its attrs after every unlink); the master's own come with its answer.
   */
  function touched(dir: number): void {
    const a = cache.get(dir);
    if (!a) return;
    let t = timeOfMs(Date.now());
    const m = a.mtime;
    if (m && (m.sec > t.sec || (m.sec === t.sec && m.nsec >= t.nsec))) t = { sec: m.sec, nsec: m.nsec };
    cache.put({ ...a, mtime: t, ctime: t });
  }

  return {
    async unlink(c, parent, name) {
      checkName(name);
      const cred = await credOf(ctx, c);
      const known = cache.lookup(parent, name);
      const attr = typeof known === 'object' ? cache.get(known.ino) : undefined;
      if (attr && !isDir(attr) && attr.nlink === 1 && !ctx.files.stateOf(attr.ino)) {
        // Answered now, applied in the background (unlink-queue.ts says when that is safe).
        cache.removed(parent, name);
        cache.drop(attr.ino);
        touched(parent);
        await ctx.unlinks.start(parent, name, attr.ino, () => cache.dropListing(parent));
        return;
      }
      const survivor = await changingNames(ctx, parent, () => client.unlink({ parent, name }, cred));
      const ino = cache.removed(parent, name);
      // It lives on (other names, open): its nlink and ctime changed; else it is gone.
      if (survivor) cache.put(survivor);
      else cache.drop(ino);
    },

    async rename(c, parent, name, newParent, newName) {
      checkName(name);
      checkName(newName);
      const cred = await credOf(ctx, c);
      // The kernel has no rename flags for us (libfuse 2); an existing target is replaced
      // atomically on the master.
      const moved = await changingNames(ctx, [parent, newParent], () => client.rename({ parent, name }, { parent: newParent, name: newName }, 0, cred));
      cache.removed(parent, name);
      const replaced = cache.removed(newParent, newName);
      if (replaced !== undefined && replaced !== moved?.ino) cache.drop(replaced);
      if (moved) {
        cache.put(moved);
        cache.added(newParent, newName, moved.ino);
        if (newParent !== parent) cache.reparented(moved.ino, newParent);
      } else {
        cache.dropListing(newParent);
      }
    },

    async link(c, ino, newParent, newName) {
      checkName(newName);
      let attr;
      try {
        attr = await client.link(ino, { parent: newParent, name: newName }, await credOf(ctx, c));
      } catch (err) {
        cache.drop(ino);
        cache.dropListing(newParent);
        throw err;
      }
      cache.put(attr);
      cache.added(newParent, newName, attr.ino);
      return statOf(ctx, attr);
    },

    async symlink(c, parent, name, target) {
      checkName(name);
      if (Buffer.byteLength(target) >= SYMLINK_MAX) throw new GfsError('ENAMETOOLONG', 'symlink target too long');
      const cred = await credOf(ctx, c);
      const attr = await changingNames(ctx, parent, () => client.symlink(target, { parent, name }, cred));
      cache.put(attr);
      cache.added(parent, name, attr.ino);
      cache.setLinkTarget(attr.ino, target);
      return statOf(ctx, attr);
    },

    async readlink(c, ino) {
      const known = cache.linkTarget(ino);
      if (known !== undefined) return known;
      const target = await client.readlink(ino);
      cache.setLinkTarget(ino, target);
      return target;
    },
  };
}

