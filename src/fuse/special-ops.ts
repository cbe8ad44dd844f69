// mknod (fifos, character/block devices, sockets: inodes with their rdev, never opened by
// gfs), statfs and access.
import { constants as fsc } from 'node:fs';
import { GfsError } from '../common/errors.js';
import { NAME_MAX } from '../common/limits.js';
import { attrOfPath } from './attr-ops.js';
import { caller, checkPath, credOf, run, type FsContext } from './context.js';
import type { FuseOps, FuseStatfs } from './native.js';

const FRSIZE = 4096;

export function specialOps(ctx: FsContext): FuseOps {
  const { client, attrs } = ctx;

  return {
    mknod(path, mode, dev, cb) {
      const c = caller(ctx);
      run(ctx, 'mknod', cb, async () => {
        checkPath(path);
        await ctx.hidden.settle();
        const attr = await client.mknod(path, mode, dev, await credOf(ctx, c));
        attrs.put(attr, path);
      }, () => ({ path, mode, dev }));
    },

    statfs(path, cb) {
      run(ctx, 'statfs', cb, async (): Promise<FuseStatfs> => {
        const s = await client.statfs();
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
      });
    },

    // With default_permissions the kernel checks permissions itself and rarely asks; when it
    // does, existence is what is left to answer (root's X_OK needs an x bit somewhere).
    access(path, mode, cb) {
      const c = caller(ctx);
      run(ctx, 'access', cb, async () => {
        const attr = await attrOfPath(ctx, path);
        if ((mode & fsc.X_OK) !== 0 && c.uid === 0 && (attr.mode & 0o170000) !== 0o040000 && (attr.mode & 0o111) === 0) {
          throw new GfsError('EACCES', 'no execute permission');
        }
      }, () => ({ path, mode }));
    },
  };
}
