// fallocate(2) on an open file. Chunkservers allocate a chunk's space as it is written, so
// nothing is reserved ahead: mode 0 makes the file at least offset + length long (the new
// range reads as zeros, like the tail of a truncate up), and FALLOC_FL_KEEP_SIZE alone
// changes nothing. Punching a hole or zeroing a range writes zeros over the part of it that
// holds data, through the file's write-back like any write. The kernel writes back its dirty
// pages of the range first and drops its cached pages of it after our answer.
//
// Every mode but a punch answers ENOSPC when the range past the file's end is more than the
// cluster has free (its statfs, asked fresh): posix_fallocate promises the space, and a program
// that preallocates (a download, a database file) should hear no at once, not from a write
// later on. Space another writer takes meanwhile can still run out.
import { Buffer } from 'node:buffer';
import { GfsError } from '../common/errors.js';
import { MAX_FILE_SIZE, MiB } from '../common/limits.js';
import { truncateFile } from './attr-ops.js';
import { credOf, type FsContext } from './context.js';
import { ROOT_CALLER } from './cred.js';
import type { LowLevelOps } from './lowlevel.js';

/** linux/falloc.h */
const FALLOC_FL_KEEP_SIZE = 0x01;
const FALLOC_FL_PUNCH_HOLE = 0x02;
const FALLOC_FL_ZERO_RANGE = 0x10;
const SUPPORTED = FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE;

/** Zeros are written this much at a time (the write-back copies each piece). */
const ZERO_STEP_BYTES = 1 * MiB;
let zeros: Buffer | undefined;

export function fallocateOps(ctx: FsContext): Pick<LowLevelOps, 'fallocate'> {
  const { files, client } = ctx;

  async function checkSpace(bytes: number): Promise<void> {
    const { freeBytes } = await client.statfs();
    if (bytes > freeBytes) throw new GfsError('ENOSPC', `fallocate of ${bytes} bytes past the end, the cluster has ${freeBytes} free`);
  }

  return {
    async fallocate(_c, ino, mode, offset, length, fh) {
      if ((mode & ~SUPPORTED) !== 0) throw new GfsError('ENOTSUP', `fallocate mode 0x${mode.toString(16)} is not supported (only KEEP_SIZE, PUNCH_HOLE, ZERO_RANGE)`);
      const punch = (mode & FALLOC_FL_PUNCH_HOLE) !== 0;
      const zero = (mode & FALLOC_FL_ZERO_RANGE) !== 0;
      const keepSize = (mode & FALLOC_FL_KEEP_SIZE) !== 0;
      if (punch && (zero || !keepSize)) throw new GfsError('ENOTSUP', 'FALLOC_FL_PUNCH_HOLE goes with FALLOC_FL_KEEP_SIZE alone');
      if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length <= 0) {
        throw new GfsError('EINVAL', `fallocate of ${length} bytes at ${offset}`);
      }
      const end = offset + length;
      if (!keepSize && end > MAX_FILE_SIZE) throw new GfsError('EFBIG', `fallocate past the largest file size (${MAX_FILE_SIZE})`);
      const of = files.get(fh);
      of.checkError();
      if (!of.writable) throw new GfsError('EBADF', `handle ${fh} is not open for writing`);
      const st = of.state;
      const beyondEnd = end - Math.max(offset, st.size);
      if (!punch && beyondEnd > 0) await checkSpace(beyondEnd);
      if (punch || zero) {
        // Only what holds data is written: past the end a file reads as zeros already.
        const stop = Math.min(end, st.size);
        zeros ??= Buffer.alloc(ZERO_STEP_BYTES);
        for (let at = offset; at < stop; at += ZERO_STEP_BYTES) {
          await st.write(zeros.subarray(0, Math.min(ZERO_STEP_BYTES, stop - at)), at);
          of.checkError();
        }
        // A fill of the kernel's pages read before the zeros must not land after them.
        await files.fills.discard(ino);
      }
      // Through a handle the kernel checked write access at open (as for ftruncate).
      if (!keepSize && end > st.size) await truncateFile(ctx, ino, end, await credOf(ctx, ROOT_CALLER));
    },
  };
}
