// unlink, rename, link, symlink, readlink. After each, the attr cache drops or replaces what
// changed (inode attrs are keyed by ino, so every name of a hard-linked file sees the new
// link count at once).
import { GfsError } from '../common/errors.js';
import { SYMLINK_MAX } from '../common/limits.js';
import { caller, checkPath, credOf, run, type FsContext } from './context.js';
import { isHiddenName } from './hidden-files.js';
import type { FuseOps } from './native.js';
import { isDir } from './stat.js';
import type { Attr } from '../client/api.js';

export function linkOps(ctx: FsContext): FuseOps {
  const { client, attrs } = ctx;

  return {
    unlink(path, cb) {
      const c = caller(ctx);
      run(ctx, 'unlink', cb, async () => {
        checkPath(path);
        // libfuse unlinks a hidden name at the file's last release: only the mapping goes.
        if (ctx.hidden.forget(path)) return;
        await ctx.hidden.settle();
        const ino = attrs.inoOf(path);
        let survivor: Attr | undefined;
        try {
          survivor = await client.unlink(path, await credOf(ctx, c));
        } catch (err) {
          attrs.forgetParent(path);
          attrs.forgetPath(path);
          throw err;
        }
        // The directory's new attrs came with the reply (client.observeAttrs); the inode's
        // nlink/ctime changed under its other names too.
        attrs.forgetName(path);
        if (survivor) attrs.put(survivor);
        else attrs.forgetIno(ino);
      }, () => ({ path }));
    },

    rename(src, dst, cb) {
      const c = caller(ctx);
      run(ctx, 'rename', cb, async () => {
        checkPath(src);
        checkPath(dst);
        if (isHiddenName(dst)) {
          await ctx.hidden.hide(src, dst, await credOf(ctx, c));
          return;
        }
        await ctx.hidden.beforeRename(dst);
        const srcIno = attrs.inoOf(src);
        const dstIno = attrs.inoOf(dst);
        let moved: Attr | undefined;
        try {
          // libfuse 2 has no rename flags; replacing an existing target is atomic on the master.
          moved = await client.rename(src, dst, 0, await credOf(ctx, c));
        } catch (err) {
          attrs.forgetParent(src);
          attrs.forgetParent(dst);
          attrs.forgetIno(srcIno);
          attrs.forgetIno(dstIno);
          attrs.forgetAllPaths();
          throw err;
        }
        // Both directories' new attrs came with the reply (client.observeAttrs). A replaced
        // target lost a link; names under a renamed directory moved with it.
        if (dstIno !== moved?.ino) attrs.forgetIno(dstIno);
        if (moved) attrs.put(moved);
        else attrs.forgetIno(srcIno);
        attrs.movePaths(src, dst, !moved || isDir(moved));
      }, () => ({ src, dst }));
    },

    link(src, dst, cb) {
      const c = caller(ctx);
      run(ctx, 'link', cb, async () => {
        checkPath(src);
        checkPath(dst);
        await ctx.hidden.settle();
        try {
          const attr = await client.link(src, dst, await credOf(ctx, c));
          attrs.put(attr, dst);
        } catch (err) {
          attrs.forgetPath(src);
          attrs.forgetParent(dst);
          throw err;
        }
      }, () => ({ src, dst }));
    },

    symlink(target, path, cb) {
      const c = caller(ctx);
      run(ctx, 'symlink', cb, async () => {
        checkPath(path);
        if (Buffer.byteLength(target) >= SYMLINK_MAX) throw new GfsError('ENAMETOOLONG', 'symlink target too long');
        await ctx.hidden.settle();
        const attr = await client.symlink(target, path, await credOf(ctx, c));
        attrs.put(attr, path);
      }, () => ({ target, path }));
    },

    readlink(path, cb) {
      run(ctx, 'readlink', cb, async () => {
        checkPath(path);
        return client.readlink(path);
      }, () => ({ path }));
    },
  };
}
