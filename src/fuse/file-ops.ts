// create/open/read/write/flush/fsync/release. Handles go by inode number (an unlinked or
// renamed file keeps working); data goes through the per-inode write-back and per-handle
// read-ahead. close() (flush) returns once the data is on every replica and the size is
// committed; fsync additionally waits for the replicas' disks.
import { constants as fsc } from 'node:fs';
import { GfsError } from '../common/errors.js';
import { MAX_FILE_SIZE } from '../common/limits.js';
import { caller, checkPath, credOf, run, runCount, type FsContext } from './context.js';
import type { FuseOps } from './native.js';
import { S_IFREG } from './stat.js';

export function fileOps(ctx: FsContext): FuseOps {
  const { client, attrs, files } = ctx;

  return {
    create(path, mode, flags, cb) {
      const c = caller(ctx);
      run(ctx, 'create', cb, async () => {
        checkPath(path);
        await ctx.hidden.settle();
        const cred = await credOf(ctx, c);
        const exclusive = (flags & fsc.O_EXCL) !== 0;
        const startSec = Math.floor(Date.now() / 1000);
        const forWrite = (flags & 3) !== fsc.O_RDONLY;
        const made = await client.create(path, S_IFREG | (mode & 0o7777), cred, { exclusive, open: true, forWrite });
        let attr = made;
        // Lost a race with another client that created it first: O_TRUNC still applies.
        if ((flags & fsc.O_TRUNC) !== 0 && attr.size > 0) {
          const st = files.stateOf(attr.ino);
          const apply = () => client.truncate(attr.ino, 0, cred);
          attr = st ? await st.truncate(0, apply) : await apply();
        }
        attrs.put(attr, path);
        // A file we just created has no xattrs: the kernel's "security.capability" probe before
        // the first write needs no master round trip.
        if (exclusive || (made.ctime?.sec ?? 0) >= startSec) ctx.noCaps.set(attr.ino, Date.now());
        return files.open(attr, flags).fh;
      }, () => ({ path, mode, flags }));
    },

    open(path, flags, cb) {
      const c = caller(ctx);
      run(ctx, 'open', cb, async () => {
        checkPath(path);
        const attr = await client.open(ctx.hidden.target(path), flags, await credOf(ctx, c));
        attrs.put(attr, path);
        return files.open(attr, flags).fh;
      }, () => ({ path, flags }));
    },

    read(path, fd, buf, len, pos, cb) {
      runCount(ctx, 'read', cb, async () => {
        const of = files.get(fd);
        const st = of.state;
        // Pending writes of this inode (any handle in this mount) land before we read.
        if (st.dirty) await st.flushAll();
        const data = await of.ra.read(st.gen, pos, len);
        return data.copy(buf, 0, 0, Math.min(len, data.length));
      }, () => ({ fd, pos, len }));
    },

    write(path, fd, buf, len, pos, cb) {
      runCount(ctx, 'write', cb, async () => {
        const of = files.get(fd);
        of.checkError();
        const st = of.state;
        // O_APPEND: the end as this mount knows it (buffered writes included). Taken and
        // advanced synchronously, so appends through this mount are serialised.
        const at = of.append ? st.size : pos;
        if (at + len > MAX_FILE_SIZE) throw new GfsError('EFBIG', `write past the largest file size (${MAX_FILE_SIZE})`);
        // The cached attr stays: while data is buffered, getattr reports this mount's size
        // (statOf), and the commit at flush replaces the attr with the master's new one.
        await st.write(len === buf.length ? buf : buf.subarray(0, len), at);
        return len;
      }, () => ({ fd, pos, len }));
    },

    flush(path, fd, cb) {
      run(ctx, 'flush', cb, async () => {
        const of = files.get(fd);
        await of.state.flushAll(); // its commit puts the master's new attr in the cache
        of.checkError();
      }, () => ({ fd }));
    },

    fsync(path, datasync, fd, cb) {
      run(ctx, 'fsync', cb, async () => {
        const of = files.get(fd);
        await of.state.flushAll();
        of.checkError();
        attrs.forgetIno(of.ino);
        await client.fsync(of.ino);
      }, () => ({ fd }));
    },

    release(path, fd, cb) {
      run(ctx, 'release', cb, async () => {
        await files.release(fd);
      }, () => ({ fd }));
    },
  };
}


