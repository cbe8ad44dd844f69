// Durability of a file or directory named by path, for code that no longer holds it open.
import { open } from 'node:fs/promises';

/**
 * fsync of `path` (fdatasync with `dataOnly`): what was written to a file, or the names created,
 * renamed or removed in a directory, are on disk when this resolves.
 */
export async function syncPath(path: string, dataOnly = false): Promise<void> {
  const fh = await open(path, 'r');
  try {
    await (dataOnly ? fh.datasync() : fh.sync());
  } finally {
    await fh.close();
  }
}
