// The one table from client errors to the errno the kernel is answered with.
// A GfsError carries its POSIX name across the wire (common/errors.ts); anything else is a bug
// or an unexpected failure and becomes EIO, logged with the op that hit it.
import { constants as os } from 'node:os';
import { GfsError } from '../common/errors.js';
import type { Logger } from '../common/logger.js';

const E = os.errno as Record<string, number>;

/** Names the kernel understands as-is. Everything here passes through unchanged. */
const PASS_THROUGH = new Set([
  'EPERM', 'ENOENT', 'EIO', 'ENXIO', 'EBADF', 'EAGAIN', 'ENOMEM', 'EACCES', 'EBUSY', 'EEXIST',
  'EXDEV', 'ENODEV', 'ENOTDIR', 'EISDIR', 'EINVAL', 'EFBIG', 'ENOSPC', 'EROFS', 'EMLINK',
  'ERANGE', 'ENAMETOOLONG', 'ENOSYS', 'ENOTEMPTY', 'ELOOP', 'ENODATA', 'ENOTSUP', 'EOPNOTSUPP',
  'ETIMEDOUT', 'EOVERFLOW', 'ESTALE', 'E2BIG', 'EHOSTDOWN', 'ECONNREFUSED', 'EINTR', 'ESPIPE',
  'ETXTBSY', 'EDQUOT', 'EMFILE', 'ENFILE', 'EWOULDBLOCK',
]);

/** Names rewritten for the kernel (Linux spells ENOTSUP as EOPNOTSUPP; same number). */
const REWRITE: Record<string, string> = {
  ENOTSUP: 'EOPNOTSUPP',
};

export const EIO = -(E.EIO ?? 5);
export const ENOENT = -(E.ENOENT ?? 2);
export const EBADF = -(E.EBADF ?? 9);
export const EINVAL = -(E.EINVAL ?? 22);
export const ERANGE = -(E.ERANGE ?? 34);
export const ENODATA = -(E.ENODATA ?? 61);
export const ENAMETOOLONG = -(E.ENAMETOOLONG ?? 36);
export const EISDIR = -(E.EISDIR ?? 21);
export const ENOTSUP = -(E.EOPNOTSUPP ?? 95);
export const EPERM = -(E.EPERM ?? 1);
export const EACCES = -(E.EACCES ?? 13);
export const EFBIG = -(E.EFBIG ?? 27);

/** The (positive) errno number of a POSIX name, EIO for names we do not know. */
export function errnoNumberOf(name: string): number {
  return E[REWRITE[name] ?? name] ?? E.EIO ?? 5;
}

/** Negative errno for a name, or undefined when the name is not one we pass on. */
export function errnoOf(code: string): number | undefined {
  const name = REWRITE[code] ?? code;
  if (!PASS_THROUGH.has(code) && !PASS_THROUGH.has(name)) return undefined;
  const n = E[name];
  return n === undefined ? undefined : -n;
}

/** Maps any thrown value to a negative errno for fuse-native; unknown failures are EIO and logged. */
export function toErrno(err: unknown, log: Logger, op: string, detail?: Record<string, unknown>): number {
  if (err instanceof GfsError) {
    // A rename inside one gfs mount is never cross-device: EXDEV from the master is a bug, and
    // passing it on would make `mv` silently copy + delete instead of renaming.
    if (op === 'rename' && err.code === 'EXDEV') {
      log.error({ op, ...detail, err: err.message }, 'master answered EXDEV for a rename inside the mount');
      return EIO;
    }
    const n = errnoOf(err.code);
    if (n !== undefined) {
      if (n === EIO || err.code === 'ETIMEDOUT' || err.code === 'EHOSTDOWN') log.warn({ op, ...detail, err: err.message }, 'op failed');
      else log.debug({ op, ...detail, code: err.code }, 'op error');
      return n;
    }
    log.warn({ op, ...detail, err: err.message }, 'op failed with an errno the kernel is not given; answering EIO');
    return EIO;
  }
  // Node system errors (e.g. from /proc reads) carry a POSIX name in `code`.
  const code = (err as { code?: unknown })?.code;
  if (typeof code === 'string') {
    const n = errnoOf(code);
    if (n !== undefined) return n;
  }
  log.error({ op, ...detail, err: err instanceof Error ? (err.stack ?? err.message) : String(err) }, 'unexpected error; answering EIO');
  return EIO;
}
