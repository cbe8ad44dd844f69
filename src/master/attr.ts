// Inode -> wire Attr (st_* as the kernel expects them).
import type { Attr } from '../generated/gfs/index.js';
import { packRecords, writeRecord } from '../common/dirent-pack.js';
import { DIR_SIZE, type Inode, isDir, isReg } from './inode.js';

/** st_size: a directory shows DIR_SIZE. */
function sizeOf(i: Inode): number {
  return isDir(i) ? DIR_SIZE : i.size;
}

/** st_blocks in 512-byte units: what the file would occupy (holes are not tracked). */
function blocksOf(i: Inode): number {
  return isDir(i) ? DIR_SIZE / 512 : isReg(i) ? Math.ceil(i.size / 512) : 0;
}

export function toAttr(i: Inode): Attr {
  const size = sizeOf(i);
  const blocks = blocksOf(i);
  return {
    ino: i.ino,
    mode: i.mode,
    nlink: i.nlink,
    uid: i.uid,
    gid: i.gid,
    size,
    rdev: i.rdev,
    blocks,
    atime: { sec: i.atime.sec, nsec: i.atime.nsec },
    mtime: { sec: i.mtime.sec, nsec: i.mtime.nsec },
    ctime: { sec: i.ctime.sec, nsec: i.ctime.nsec },
    goal: i.goal,
    xattrs: i.xattrs.size,
  };
}

/**
 * A ReadDir page as packed records (common/dirent-pack.ts) written straight from the inodes:
 * no Attr objects or name buffers per entry, as a listing of hundreds of entries would make.
 */
export function packDirPage(entries: ReadonlyArray<{ name: string; inode: Inode }>): Buffer {
  return packRecords(
    entries.length,
    (k) => entries[k]!.name,
    (u, w, k) => {
      const i = entries[k]!.inode;
      writeRecord(u, w, i.ino, i, sizeOf(i), blocksOf(i), i.goal, i.xattrs.size);
    },
  );
}

