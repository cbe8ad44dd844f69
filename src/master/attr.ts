// Inode -> wire Attr (st_* as the kernel expects them).
import type { Attr } from '../generated/gfs/index.js';
import { DIR_SIZE, type Inode, isDir, isReg } from './inode.js';

export function toAttr(i: Inode): Attr {
  const dir = isDir(i);
  const size = dir ? DIR_SIZE : i.size;
  // st_blocks in 512-byte units: what the file would occupy (holes are not tracked).
  const blocks = dir ? DIR_SIZE / 512 : isReg(i) ? Math.ceil(i.size / 512) : 0;
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
