// One master per data directory: `<dir>/LOCK` is created with O_EXCL and holds the owner's pid.
// A lock whose pid is no longer running (a master killed with SIGKILL) is stale and taken over.
import { closeSync, openSync, readFileSync, unlinkSync, writeSync, fsyncSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { GfsError } from '../common/errors.js';

export const LOCK_FILE = 'LOCK';

export interface DataDirLock {
  file: string;
  /** The pid of a dead owner whose stale lock was taken over, if any. */
  tookOverFrom?: number;
  release(): void;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Takes the lock of `dir` or throws EBUSY naming the running owner. */
export function lockDataDir(dir: string): DataDirLock {
  const file = join(dir, LOCK_FILE);
  let tookOverFrom: number | undefined;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fd = openSync(file, 'wx', 0o644);
      try {
        writeSync(fd, `${process.pid}\n${hostname()}\n${new Date().toISOString()}\n`);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      let released = false;
      return {
        file,
        ...(tookOverFrom !== undefined ? { tookOverFrom } : {}),
        release() {
          if (released) return;
          released = true;
          try {
            if (Number(readFileSync(file, 'utf8').split('\n')[0]) === process.pid) unlinkSync(file);
          } catch {
            // already gone
          }
        },
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    let content = '';
    try {
      content = readFileSync(file, 'utf8');
    } catch {
      continue; // removed meanwhile: try again
    }
    const pid = Number(content.split('\n')[0]);
    const host = content.split('\n')[1];
    if (host && host !== hostname()) {
      throw new GfsError('EBUSY', `data directory ${dir} is locked by a master on host ${host} (pid ${pid}); remove ${file} if it is gone`);
    }
    if (Number.isSafeInteger(pid) && pid > 0 && pid !== process.pid && alive(pid)) {
      throw new GfsError('EBUSY', `data directory ${dir} is in use by another master (pid ${pid}; lock file ${file})`);
    }
    // Stale (dead pid, or unreadable): remove it, but only if nobody replaced it meanwhile.
    try {
      if (readFileSync(file, 'utf8') === content) unlinkSync(file);
    } catch {
      // gone already
    }
    tookOverFrom = Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
  }
  throw new GfsError('EBUSY', `could not take the lock ${file}`);
}
