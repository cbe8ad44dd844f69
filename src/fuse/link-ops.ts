// unlink, rename, link, symlink, readlink. After each, the attr cache drops or replaces what
// changed (inode attrs are keyed by ino, so every name of a hard-linked file sees the new
// link count at once).
import { GfsError } from '../common/errors.js';
import { SYMLINK_MAX } from '../common/limits.js';
import { caller, checkPath, credOf, run, type FsContext } from './context.js';
import { isHiddenName } from './hidden-files.js';
import type { FuseOps } from './native.js';

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
        try {
          await client.unlink(path, await credOf(ctx, c));
        } finally {
          attrs.forgetParent(path);
          attrs.forgetPath(path); // the inode's nlink/ctime changed under its other names too
        }
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
        try {
          // libfuse 2 has no rename flags; replacing an existing target is atomic on the master.
          await client.rename(src, dst, 0, await credOf(ctx, c));
        } finally {
          attrs.forgetParent(src);
          attrs.forgetParent(dst);
          attrs.forgetIno(srcIno);
          attrs.forgetIno(dstIno);
          attrs.forgetAllPaths(); // names under a renamed directory moved too
        }
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
          throw err;
        } finally {
          attrs.forgetParent(dst);
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
        attrs.forgetParent(path);
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
