// Start-up scan of `<dataDir>/chunks`: loads every chunk's meta (from the head of its
// `<handle>.chunk`, or from the `<handle>.meta` sidecar of a chunk written before that layout,
// chunk-meta.ts), and removes leftovers of interrupted operations (meta temp files of format 1,
// unfinished clones, chunk files whose meta was never written). A meta that fails its checks
// is returned as undefined: that chunk is corrupt (nothing can vouch for its data).
import { readdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import pLimit from 'p-limit';
import type { Logger } from '../common/logger.js';
import { metaUnwritten, readMetaFile, type StoredMeta } from './chunk-meta.js';

/** Meta files read in parallel while scanning. */
const SCAN_CONCURRENCY = 16;

export interface ScanResult {
  dirs: string[];
  chunks: Map<number, StoredMeta | undefined>;
  /** Chunks whose meta is in a `.meta` sidecar. */
  sidecars: Set<number>;
}

export async function scanChunks(chunksDir: string, shardDir: (h: number) => string, log: Logger): Promise<ScanResult> {
  const limit = pLimit(SCAN_CONCURRENCY);
  const jobs: Promise<void>[] = [];
  const out: ScanResult = { dirs: [], chunks: new Map(), sidecars: new Set() };
  for (const shard of await readdir(chunksDir)) {
    if (!/^[0-9a-f]{2}$/.test(shard)) continue;
    const dir = join(chunksDir, shard);
    let names: string[];
    try {
      names = await readdir(dir);
    } catch (err) {
      log.warn({ dir, err: (err as Error).message }, 'skipping unreadable chunk directory');
      continue;
    }
    out.dirs.push(dir);
    const metas = new Set<number>();
    for (const name of names) {
      const m = /^(\d+)\.meta(\.tmp)?$/.exec(name);
      if (!m) continue;
      const h = Number(m[1]);
      if (m[2]) {
        jobs.push(limit(() => unlink(join(dir, name)).catch(() => undefined)));
      } else if (Number.isSafeInteger(h) && h > 0 && shardDir(h) === dir) {
        metas.add(h);
        out.sidecars.add(h);
        jobs.push(
          limit(async () => {
            try {
              out.chunks.set(h, await readMetaFile(join(dir, name)));
            } catch (err) {
              log.warn({ handle: h, err: (err as Error).message }, 'unreadable chunk meta: chunk marked corrupt');
              out.chunks.set(h, undefined);
            }
          }),
        );
      }
    }
    for (const name of names) {
      if (/^\d+\.clone$/.test(name)) {
        // A clone cut short (crash or kill mid-copy): never installed, never visible.
        log.info({ file: join(dir, name) }, 'removing unfinished clone');
        jobs.push(limit(() => unlink(join(dir, name)).catch(() => undefined)));
        continue;
      }
      const m = /^(\d+)\.chunk$/.exec(name);
      const h = m ? Number(m[1]) : NaN;
      if (!m || metas.has(h)) continue;
      const path = join(dir, name);
      if (!Number.isSafeInteger(h) || h <= 0 || shardDir(h) !== dir) continue;
      jobs.push(
        limit(async () => {
          try {
            out.chunks.set(h, await readMetaFile(path, true));
          } catch (err) {
            if (unwritten(path)) {
              // No meta ever written: a create cut short, or the data file of a sidecar chunk
              // whose delete was cut short (its meta goes first). Nothing can vouch for it.
              log.warn({ file: path }, 'removing chunk file without meta');
              await unlink(path).catch(() => undefined);
            } else {
              log.warn({ handle: h, err: (err as Error).message }, 'unreadable chunk meta: chunk marked corrupt');
              out.chunks.set(h, undefined);
            }
          }
        }),
      );
    }
  }
  await Promise.all(jobs);
  return out;
}

function unwritten(path: string): boolean {
  try {
    return metaUnwritten(path);
  } catch {
    return false; // unreadable: corrupt, reported rather than removed
  }
}
