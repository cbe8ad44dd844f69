// setxattr/getxattr/listxattr/removexattr. The kernel asks for "security.capability" before
// every write(2) on FUSE (file_remove_privs), and `ls -l` for "security.selinux" of every
// file: an inode whose cached attrs say it has no xattrs at all is answered ENODATA here, and
// the absence of "security.capability" is remembered per inode for a short time, instead of a
// master round trip each.
import { GfsError } from '../common/errors.js';
import { XATTR_NAME_MAX, XATTR_VALUE_MAX } from '../common/limits.js';
import { caller, checkPath, credOf, run, type FsContext } from './context.js';
import type { FuseOps } from './native.js';

const CAPS = 'security.capability';
const NEG_TTL_MS = 1000;
const NEG_MAX = 65536;

function checkName(name: string): void {
  if (name.length === 0) throw new GfsError('EINVAL', 'empty xattr name');
  if (Buffer.byteLength(name) > XATTR_NAME_MAX) throw new GfsError('ERANGE', 'xattr name too long');
  // POSIX ACLs would be stored but never enforced: say we do not support them.
  if (name.startsWith('system.')) throw new GfsError('ENOTSUP', `xattr namespace not supported: ${name}`);
}

export function xattrOps(ctx: FsContext): FuseOps {
  const { client, attrs } = ctx;
  const { noCaps } = ctx;

  function changed(path: string): void {
    const ino = attrs.inoOf(path);
    if (ino !== undefined) noCaps.delete(ino);
    else noCaps.clear();
    attrs.forgetPath(path); // ctime changed
  }

  return {
    setxattr(path, name, value, position, flags, cb) {
      const c = caller(ctx);
      const copy = Buffer.from(value); // fuse-native's buffer is only valid until we answer
      run(ctx, 'setxattr', cb, async () => {
        checkPath(path);
        checkName(name);
        if (copy.length > XATTR_VALUE_MAX) throw new GfsError('E2BIG', 'xattr value too large');
        try {
          await client.setxattr(ctx.hidden.target(path), name, copy, flags, await credOf(ctx, c));
        } finally {
          changed(path);
        }
      }, () => ({ path, name, flags }));
    },

    getxattr(path, name, position, cb) {
      run(ctx, 'getxattr', cb, async () => {
        checkPath(path);
        checkName(name);
        if (attrs.get(path)?.xattrs === 0) throw new GfsError('ENODATA', 'no such attribute');
        const ino = name === CAPS ? attrs.inoOf(path) : undefined;
        if (ino !== undefined) {
          const at = noCaps.get(ino);
          if (at !== undefined && Date.now() - at < NEG_TTL_MS) throw new GfsError('ENODATA', 'no such attribute');
        }
        try {
          return await client.getxattr(ctx.hidden.target(path), name);
        } catch (err) {
          if (ino !== undefined && err instanceof GfsError && err.code === 'ENODATA') {
            if (noCaps.size >= NEG_MAX) noCaps.clear();
            noCaps.set(ino, Date.now());
          }
          throw err;
        }
      }, () => ({ path, name }));
    },

    listxattr(path, cb) {
      run(ctx, 'listxattr', cb, async () => {
        checkPath(path);
        if (attrs.get(path)?.xattrs === 0) return [];
        return client.listxattr(ctx.hidden.target(path));
      }, () => ({ path }));
    },

    removexattr(path, name, cb) {
      const c = caller(ctx);
      run(ctx, 'removexattr', cb, async () => {
        checkPath(path);
        checkName(name);
        try {
          await client.removexattr(ctx.hidden.target(path), name, await credOf(ctx, c));
        } finally {
          changed(path);
        }
      }, () => ({ path, name }));
    },
  };
}
