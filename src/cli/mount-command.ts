// `gfs mount` and `gfs umount`.
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { GfsClient } from '../client/client.js';
import { MALLOC_TUNED_AT_START } from '../common/malloc-tuning.js';
import { createLogger } from '../common/logger.js';
import { cleanStaleMount, mountGfs, umountDir } from '../fuse/mount.js';
import { setMetricsEnabled } from '../common/metrics.js';
import { ensurePatchedFuse } from './fuse-setup.js';
import { startMountMetrics } from './mount-metrics.js';
import { announceHttp, announceMounted } from './ready-line.js';
import { nonNegativeFlag, stopOnSignal } from './daemons.js';


export interface MountFlags {
  master: string;
  logFile?: string;
  logLevel?: string;
  debug?: boolean;
  /** /metrics + /healthz on this port ('0' = any free port); absent = no HTTP port. */
  metricsPort?: string;
  metricsHost?: string;
  /** false with --no-metrics. */
  metrics?: boolean;
  attrTimeout?: string;
  /** false with --no-fill-page-cache. */
  fillPageCache?: boolean;
}


export async function runMount(dir: string, f: MountFlags): Promise<void> {
  const abs = resolve(dir);
  const attrTimeoutS = nonNegativeFlag('attr-timeout', f.attrTimeout);
  const log = createLogger({ name: 'mount', file: f.logFile, level: f.logLevel });
  if (f.metrics === false) setMetricsEnabled(false);
  await ensurePatchedFuse(log);
  await cleanStaleMount(abs);
  mkdirSync(abs, { recursive: true });
  const client = new GfsClient({ master: f.master, log });
  const handle = await mountGfs(client, abs, {
    log,
    debug: f.debug,
    attrTimeoutS,
    fillPageCache: f.fillPageCache,
  });
  log.info({ path: abs, master: f.master, mallocTuned: MALLOC_TUNED_AT_START }, 'mounted');
  // `kill -USR2 <pid>` logs where the time went: FUSE ops and the RPCs behind them.
  process.on('SIGUSR2', () => log.info({ fuseOps: handle.stats(), rpcs: client.stats.snapshot(), fills: handle.fillStats() }, 'op stats'));
  const http = await startMountMetrics(f, abs, log);
  if (http) announceHttp('mount', http.url);
  announceMounted(abs);
  const stop = stopOnSignal(log, async () => {
    await http?.close();
    await handle.unmount();
    log.info({ rpcs: client.stats.snapshot() }, 'rpc stats');
    await client.close();
  });
  // `fusermount -u DIR` (or `gfs umount`) ends the process, as with any FUSE file system.
  void handle.detached.then(() => stop('unmounted from outside'));
}

/** Unmounts a gfs mount (the mount process sees its session end and exits). */
export async function runUmount(dir: string): Promise<void> {
  await umountDir(resolve(dir));
}
