// Path validation shared by master and client: one place decides what a legal gfs path is.
import { GfsError } from './errors.js';
import { NAME_MAX, PATH_MAX } from './limits.js';

/** Splits an absolute path into its components, rejecting what POSIX would reject. */
export function splitPath(path: string): string[] {
  if (typeof path !== 'string' || !path.startsWith('/')) throw new GfsError('EINVAL', `path must be absolute: "${path}"`);
  if (Buffer.byteLength(path) > PATH_MAX) throw new GfsError('ENAMETOOLONG', `path longer than ${PATH_MAX} bytes`);
  if (path.includes('\0')) throw new GfsError('EINVAL', 'path contains a NUL byte');
  const parts: string[] = [];
  for (const name of path.split('/')) {
    if (name === '' || name === '.') continue;
    if (name === '..') {
      parts.pop();
      continue;
    }
    checkName(name);
    parts.push(name);
  }
  return parts;
}

export function checkName(name: string): void {
  if (Buffer.byteLength(name) > NAME_MAX) {
    throw new GfsError('ENAMETOOLONG', `name longer than ${NAME_MAX} bytes: "${name.slice(0, 32)}..."`);
  }
  if (name.includes('/') || name.includes('\0')) throw new GfsError('EINVAL', `bad name "${name}"`);
}

/** A name given on its own (not inside a path): also not empty, "." or "..". */
export function checkEntryName(name: unknown): string {
  if (typeof name !== 'string' || name === '' || name === '.' || name === '..') {
    throw new GfsError('EINVAL', `bad entry name ${JSON.stringify(String(name).slice(0, 64))}`);
  }
  checkName(name);
  return name;
}

export function joinPath(dir: string, name: string): string {
  return dir === '/' ? `/${name}` : `${dir}/${name}`;
}
