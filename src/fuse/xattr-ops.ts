// setxattr/getxattr/listxattr/removexattr. The kernel asks for "security.capability" before
// every write(2) on FUSE (file_remove_privs): an inode whose cached attrs say it has no xattrs
// at all is answered ENODATA here, and the absence of "security.capability" is remembered per
// inode for a short time, instead of a master round trip each.
//
// SELinux labels are not kept: the kernel labels a FUSE mount by policy (genfscon), never by
// this xattr, so "security.selinux" answers ENOTSUP, as the "system." ACL names do. GNU ls -l
// asks for it for every file it lists and, told ENOTSUP, stops asking for the whole device:
// one round trip per `ls -l` instead of one per file.
import { GfsError } from '../common/errors.js';
import { XATTR_NAME_MAX, XATTR_VALUE_MAX } from '../common/limits.js';
import { credOf, type FsContext } from './context.js';
import type { LowLevelOps } from './lowlevel.js';

const CAPS = 'security.capability';
const SELINUX = 'security.selinux';
const NEG_TTL_MS = 1000;
const NEG_MAX = 65536;

function checkName(name: string): void {
  if (name.length === 0) throw new GfsError('EINVAL', 'empty xattr name');
  if (Buffer.byteLength(name) > XATTR_NAME_MAX) throw new GfsError('ERANGE', 'xattr name too long');
  // POSIX ACLs would be stored but never enforced: say we do not support them.
  if (name.startsWith('system.')) throw new GfsError('ENOTSUP', `xattr namespace not supported: ${name}`);
  if (name === SELINUX) throw GfsError.quiet('ENOTSUP', 'SELinux labels are not stored on gfs');
}

export function xattrOps(ctx: FsContext): Pick<LowLevelOps, 'setxattr' | 'getxattr' | 'listxattr' | 'removexattr'> {
  const { client, cache, noCaps } = ctx;

  function changed(ino: number): void {
    noCaps.delete(ino);
    cache.drop(ino); // xattr count and ctime changed
  }

  return {
    // No await before the copy: `value` is the kernel's buffer, valid only during this call.
    async setxattr(c, ino, name, value, flags) {
      const copy = Buffer.from(value);
      checkName(name);
      if (copy.length > XATTR_VALUE_MAX) throw new GfsError('E2BIG', 'xattr value too large');
      try {
        await client.setxattr(ino, name, copy, flags, await credOf(ctx, c));
      } finally {
        changed(ino);
      }
    },

    async getxattr(c, ino, name) {
      checkName(name);
      if (cache.get(ino)?.xattrs === 0) throw GfsError.quiet('ENODATA', 'no such attribute');
      if (name === CAPS) {
        const at = noCaps.get(ino);
        if (at !== undefined && Date.now() - at < NEG_TTL_MS) throw GfsError.quiet('ENODATA', 'no such attribute');
      }
      try {
        return await client.getxattr(ino, name);
      } catch (err) {
        if (name === CAPS && err instanceof GfsError && err.code === 'ENODATA') {
          if (noCaps.size >= NEG_MAX) noCaps.clear();
          noCaps.set(ino, Date.now());
        }
        throw err;
      }
    },

    async listxattr(c, ino) {
      if (cache.get(ino)?.xattrs === 0) return [];
      return (await client.listxattr(ino)).filter((n) => n !== SELINUX);
    },

    async removexattr(c, ino, name) {
      checkName(name);
      try {
        await client.removexattr(ino, name, await credOf(ctx, c));
      } finally {
        changed(ino);
      }
    },
  };
}
