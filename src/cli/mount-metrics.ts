// The mount's HTTP port (`gfs mount --metrics-port P`, off by default): /metrics (FUSE op and
// client RPC histograms from OpStats, process metrics) and /healthz (is DIR still a mount?).
import { commonRoutes, startHttpServer, type HttpHandle } from '../common/http-server.js';
import type { Logger } from '../common/logger.js';
import { initProcessMetrics } from '../common/metrics.js';
import { intFlag } from './daemons.js';
import { isMountPoint } from '../fuse/mount.js';

export async function startMountMetrics(
  f: { metricsPort?: string; metricsHost?: string },
  dir: string,
  log: Logger,
): Promise<HttpHandle | undefined> {
  const port = intFlag('metrics-port', f.metricsPort);
  if (port === undefined) return undefined;
  initProcessMetrics('mount');
  return startHttpServer(f.metricsHost ?? '127.0.0.1', port, commonRoutes(() => isMountPoint(dir) || `${dir} is not mounted`), log);
}
