// readdir, mkdir, rmdir, fsyncdir. Directories need no open state of their own: libfuse 2 keeps the
// listing per opendir, and the master lists by path.
import type { Attr } from '../client/api.js';
import { parentOf } from './attr-cache.js';
import { attrOfPath, statOf } from './attr-ops.js';
import { caller, checkPath, credOf, run, type FsContext } from './context.js';
import type { FuseOps, FuseStat } from './native.js';
import { S_IFDIR } from './stat.js';

function join(dir: string, name: string): string {
  return dir === '/' ? `/${name}` : `${dir}/${name}`;
}

const EMPTY_DIR_STAT = (ino: number): FuseStat => ({
  mode: S_IFDIR | 0o755, uid: 0, gid: 0, size: 0, nlink: 2, ino, rdev: 0, blksize: 4096, blocks: 0,
  atime: { sec: 0, nsec: 0 }, mtime: { sec: 0, nsec: 0 }, ctime: { sec: 0, nsec: 0 },
});

export function dirOps(ctx: FsContext): FuseOps {
  const { client, attrs } = ctx;

  return {
    readdir(path, cb) {
      run<[string[], FuseStat[]]>(ctx, 'readdir', (err, v) => cb(err, v?.[0], v?.[1]), async () => {
        // A directory removed while open lists as empty (no name to list by any more).
        if (path === null) return [['.', '..'], [EMPTY_DIR_STAT(0), EMPTY_DIR_STAT(0)]];
        checkPath(path);
        const [entries, self, parent] = await Promise.all([
          client.readdir(path),
          attrOfPath(ctx, path),
          path === '/' ? Promise.resolve(undefined) : attrOfPath(ctx, parentOf(path)).catch(() => undefined),
        ]);
        const names: string[] = ['.', '..'];
        const stats: FuseStat[] = [statOf(ctx, self), statOf(ctx, parent ?? self)];
        const shadowed = ctx.hidden.shadowedIn(path);
        for (const e of entries) {
          if (shadowed?.has(e.name)) continue;
          attrs.put(e.attr, join(path, e.name));
          names.push(e.name);
          stats.push(statOf(ctx, e.attr));
        }
        return [names, stats];
      }, () => ({ path }));
    },

    mkdir(path, mode, cb) {
      const c = caller(ctx);
      run(ctx, 'mkdir', cb, async () => {
        checkPath(path);
        await ctx.hidden.settle();
        const attr: Attr = await client.mkdir(path, S_IFDIR | (mode & 0o7777), await credOf(ctx, c));
        attrs.put(attr, path); // the directory's new attrs came with the reply (client.observeAttrs)
      }, () => ({ path, mode }));
    },

    // fsync(2) of a directory: its entries (every namespace change so far) are on the master's disk.
    fsyncdir(path, datasync, fd, cb) {
      run(ctx, 'fsyncdir', cb, () => client.syncMetadata(), () => ({ path }));
    },

    rmdir(path, cb) {
      const c = caller(ctx);
      run(ctx, 'rmdir', cb, async () => {
        checkPath(path);
        await ctx.hidden.settle();
        try {
          await client.rmdir(path, await credOf(ctx, c));
        } catch (err) {
          attrs.forgetParent(path);
          throw err;
        } finally {
          attrs.forgetPath(path);
        }
      }, () => ({ path }));
    },
  };
}
