// create/open/read/write/flush/fsync/release. Data goes through the per-inode write-back and
// per-handle read-ahead. close() (flush) returns once the data is on every replica and the
// size is committed; fsync additionally waits for the replicas' disks and the master's log.
// An open of a file whose data is as this mount last saw it keeps the kernel's page cache.
import { constants as fsc } from 'node:fs';
import { GfsError } from '../common/errors.js';
import { MAX_FILE_SIZE } from '../common/limits.js';
import { statOf, truncateFile } from './attr-ops.js';
import { changingNames, checkName, credOf, type FsContext } from './context.js';
import { OPEN_KEEP_CACHE, type LowLevelOps } from './lowlevel.js';
import { OpenPrefetch } from './open-prefetch.js';
import { S_IFREG } from './stat.js';

const O_ACCMODE = 3;

export function fileOps(ctx: FsContext): Pick<LowLevelOps, 'create' | 'open' | 'read' | 'write' | 'flush' | 'fsync' | 'release'> {
  const { client, cache, files } = ctx;
  const prefetch = new OpenPrefetch();

  return {
    async create(c, parent, name, mode, flags) {
      checkName(name);
      const cred = await credOf(ctx, c);
      const exclusive = (flags & fsc.O_EXCL) !== 0;
      const forWrite = (flags & O_ACCMODE) !== fsc.O_RDONLY;
      const startSec = Math.floor(Date.now() / 1000);
      const made = await changingNames(ctx, parent, () => client.create({ parent, name }, S_IFREG | (mode & 0o7777), cred, { exclusive, open: true, forWrite }));
      let attr = made;
      // Lost a race with another client that created it first: O_TRUNC still applies.
      if ((flags & fsc.O_TRUNC) !== 0 && attr.size > 0) attr = await truncateFile(ctx, attr.ino, 0, cred);
      cache.put(attr);
      cache.added(parent, name, attr.ino);
      cache.sawData(attr);
      // A file we just created has no xattrs: the kernel's "security.capability" probe before
      // the first write needs no master round trip.
      if (exclusive || (made.ctime?.sec ?? 0) >= startSec) ctx.noCaps.set(attr.ino, Date.now());
      const of = files.open(attr, flags);
      await files.fills.idle(attr.ino); // a writer's pages must not be filled after this
      return { ...statOf(ctx, attr), fh: of.fh };
    },

    async open(c, ino, flags) {
      const cred = await credOf(ctx, c);
      // A head read only where nothing of this mount can be newer than the chunkservers: no
      // handle of the inode is open here (its write-back may hold data not yet sent).
      const known = cache.latest(ino);
      const keeps = known !== undefined && cache.wouldKeep(known);
      const headBytes = files.stateOf(ino) || (flags & O_ACCMODE) !== fsc.O_RDONLY || (flags & fsc.O_DIRECT) !== 0 ? 0 : prefetch.headBytes(known, keeps);
      const { attr, head } = headBytes > 0 ? await client.openWithHead(ino, flags, cred, headBytes) : { attr: await client.open(ino, flags, cred), head: undefined };
      // Close-to-open: another client's change since the kernel last heard of this inode
      // must show now, not when the kernel's attrs lapse (it reads only up to the size it
      // holds, so an append made elsewhere stayed invisible for up to the attr timeout).
      if (cache.dataDiffers(attr)) ctx.session?.invalidateAttrs(ino);
      cache.put(attr);
      const keep = cache.keepData(attr);
      const of = files.open(attr, flags);
      if (head && !of.ra.prefill(of.state.gen, headBytes, head, keeps ? (used) => prefetch.outcome(used) : undefined)) void head.catch(() => undefined);
      // The kernel drops the file's pages after an open that does not keep them, and writes
      // update them itself: a fill fetched before must not land after we answer.
      if (!keep) files.fills.invalidate(ino);
      await files.fills.idle(ino);
      return { fh: of.fh, flags: keep ? OPEN_KEEP_CACHE : 0 };
    },

    async read(c, ino, size, offset, fh) {
      const of = files.get(fh);
      const st = of.state;
      // Pending writes of this inode (any handle in this mount) land before we read.
      if (st.dirty) await st.flushAll();
      const data = await of.ra.read(st.gen, offset, size);
      return data.length > size ? data.subarray(0, size) : data;
    },

    // No await before st.write: `data` is the kernel's buffer, valid only during this call,
    // and the write-back copies it synchronously (or before it waits for memory).
    async write(c, ino, data, offset, fh) {
      const of = files.get(fh);
      of.checkError();
      const st = of.state;
      // O_APPEND: the end as this mount knows it (buffered writes included). Taken and
      // advanced synchronously, so appends through this mount are serialised.
      const at = of.append ? st.size : offset;
      if (at + data.length > MAX_FILE_SIZE) throw new GfsError('EFBIG', `write past the largest file size (${MAX_FILE_SIZE})`);
      await st.write(data, at);
      return data.length;
    },

    async flush(c, ino, fh) {
      const of = files.get(fh);
      await of.state.flushAll(); // its commit puts the master's new attr in the cache
      of.checkError();
    },

    async fsync(c, ino, datasync, fh) {
      const of = files.get(fh);
      await of.state.flushAll();
      of.checkError();
      cache.drop(of.ino);
      await client.fsync(of.ino);
    },

    async release(c, ino, fh) {
      await files.release(fh);
    },
  };
}
