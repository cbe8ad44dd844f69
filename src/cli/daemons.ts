// `gfs master` and `gfs chunkserver`: run one daemon in the foreground until SIGINT/SIGTERM.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createLogger, type Logger } from '../common/logger.js';
import { MALLOC_TUNED_AT_START } from '../common/malloc-tuning.js';
import { startMaster } from '../master/master.js';
import { SYNC_MODES, type SyncMode } from '../master/oplog.js';
import { startChunkserver } from '../chunkserver/chunkserver.js';
import { setMetricsEnabled } from '../common/metrics.js';
import { announceHttp, announceListening } from './ready-line.js';
import { MASTER_ADDR_FILE } from './master-addr.js';
import { chunkserverSecurityFlags, masterSecurityFlags, type SecurityFlags } from './security-flags.js';

export interface CommonDaemonFlags {
  host: string;
  port: string;
  logFile?: string;
  logLevel?: string;
  /** HTTP port (status page, /metrics, /healthz); '0' = any free port. */
  httpPort?: string;
  httpHost?: string;
  /** false with --no-http. */
  http?: boolean;
  /** false with --no-metrics. */
  metrics?: boolean;
}

/** The HTTP port to open, or undefined with --no-http. */
function httpPortOf(f: CommonDaemonFlags): number | undefined {
  if (f.http === false) return undefined;
  return intFlag('http-port', f.httpPort ?? '0') ?? 0;
}

export interface MasterFlags extends CommonDaemonFlags, SecurityFlags {
  data: string;
  /** false with --no-session-port. */
  sessionPort?: string | false;
  chunkSize?: string;
  replication?: string;
  heartbeatMs?: string;
  suspectAfterMs?: string;
  deadAfterMs?: string;
  gcDelayMs?: string;
  maxClones?: string;
  maxClonesPerServer?: string;
  cloneBytesPerSec?: string;
  rebalanceMoves?: string;
  rebalanceBound?: string;
  syncMode?: string;
  checkpointBytes?: string;
}

export interface ChunkserverFlags extends CommonDaemonFlags, SecurityFlags {
  data: string;
  master: string;
  advertise?: string;
  /** false with --no-data-port. */
  dataPort?: string | false;
  advertiseData?: string;
  heartbeatMs?: string;
  scrubBytesPerSec?: string;
  scrubIdleMs?: string;
  scrubPassPauseMs?: string;
  cloneBytesPerSec?: string;
}

export function intFlag(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`--${name} must be a non-negative integer, got "${value}"`);
  return n;
}

/** A duration or size that may be 0 or fractional (`--attr-timeout 0.5`). */
export function nonNegativeFlag(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0) throw new Error(`--${name} must be a non-negative number, got "${value}"`);
  return n;
}

function fractionFlag(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name} must be a positive number, got "${value}"`);
  return n;
}

function syncModeFlag(v: string | undefined): SyncMode | undefined {
  if (v === undefined || (SYNC_MODES as readonly string[]).includes(v)) return v as SyncMode | undefined;
  throw new Error(`--sync-mode must be one of ${SYNC_MODES.join(', ')}, got "${v}"`);
}

export async function runMaster(f: MasterFlags): Promise<void> {
  const data = resolve(f.data);
  mkdirSync(data, { recursive: true });
  const log = createLogger({ name: 'master', file: f.logFile, level: f.logLevel });
  if (f.metrics === false) setMetricsEnabled(false);
  const m = await startMaster({
    httpPort: httpPortOf(f),
    httpHost: f.httpHost,
    dataDir: data,
    host: f.host,
    port: intFlag('port', f.port) ?? 0,
    sessionPort: f.sessionPort === false ? false : (intFlag('session-port', f.sessionPort) ?? 0),
    chunkSize: intFlag('chunk-size', f.chunkSize),
    replication: intFlag('replication', f.replication),
    heartbeatMs: intFlag('heartbeat-ms', f.heartbeatMs),
    suspectAfterMs: intFlag('suspect-after-ms', f.suspectAfterMs),
    deadAfterMs: intFlag('dead-after-ms', f.deadAfterMs),
    gcDelayMs: intFlag('gc-delay-ms', f.gcDelayMs),
    repair: {
      maxClones: intFlag('max-clones', f.maxClones),
      maxClonesPerSource: intFlag('max-clones-per-server', f.maxClonesPerServer),
      maxClonesPerTarget: intFlag('max-clones-per-server', f.maxClonesPerServer),
      cloneBytesPerSec: intFlag('clone-bytes-per-sec', f.cloneBytesPerSec),
      rebalanceMoves: intFlag('rebalance-moves', f.rebalanceMoves),
      rebalanceBound: fractionFlag('rebalance-bound', f.rebalanceBound),
    },
    syncMode: syncModeFlag(f.syncMode),
    checkpointLogBytes: intFlag('checkpoint-bytes', f.checkpointBytes),
    log,
    ...masterSecurityFlags(f),
  });
  writeFileSync(join(data, MASTER_ADDR_FILE), `${m.addr}\n`);
  log.info({ addr: m.addr, http: m.httpUrl, data, mallocTuned: MALLOC_TUNED_AT_START }, 'master started');
  if (m.httpUrl) announceHttp('master', m.httpUrl);
  if (m.secretFile) process.stdout.write(`gfs: cluster secret ${m.secretFile} (chunkservers: --secret-file); client key ${m.clientKeyFile} (clients)\n`);
  announceListening('master', m.addr);
  stopOnSignal(log, () => m.stop());
}

export async function runChunkserver(f: ChunkserverFlags): Promise<void> {
  if (!f.data) throw new Error('gfs chunkserver needs a data directory: --data DIR, GFS_DATA, or "data" in --config');
  const data = resolve(f.data);
  const log = createLogger({ name: 'chunkserver', file: f.logFile, level: f.logLevel });
  if (f.metrics === false) setMetricsEnabled(false);
  const cs = await startChunkserver({
    httpPort: httpPortOf(f),
    httpHost: f.httpHost,
    dataDir: data,
    master: f.master,
    host: f.host,
    port: intFlag('port', f.port) ?? 0,
    advertise: f.advertise,
    dataPort: f.dataPort === false ? false : (intFlag('data-port', f.dataPort) ?? 0),
    advertiseData: f.advertiseData,
    heartbeatMs: intFlag('heartbeat-ms', f.heartbeatMs),
    scrubBytesPerSec: intFlag('scrub-bytes-per-sec', f.scrubBytesPerSec),
    scrubIdleMs: intFlag('scrub-idle-ms', f.scrubIdleMs),
    scrubPassPauseMs: intFlag('scrub-pass-pause-ms', f.scrubPassPauseMs),
    cloneBytesPerSec: intFlag('clone-bytes-per-sec', f.cloneBytesPerSec),
    log,
    ...chunkserverSecurityFlags(f),
  });
  log.info({ addr: cs.addr, http: cs.httpUrl, server: cs.serverId, data, mallocTuned: MALLOC_TUNED_AT_START }, 'chunkserver started');
  if (cs.httpUrl) announceHttp('chunkserver', cs.httpUrl);
  announceListening('chunkserver', cs.addr);
  stopOnSignal(log, () => cs.stop());
}

/**
 * First SIGINT/SIGTERM stops cleanly; a second one exits at once. Returns the same clean stop
 * for other reasons to end the process (`reason` is logged).
 */
export function stopOnSignal(log: Logger, stop: () => Promise<void>): (reason: string) => void {
  let stopping = false;
  const onSignal = (sig: NodeJS.Signals) => {
    if (stopping) process.exit(130);
    begin({ signal: sig });
  };
  const begin = (why: { signal: NodeJS.Signals } | { reason: string }) => {
    stopping = true;
    log.info(why, 'stopping');
    stop()
      .catch((err) => log.error({ err }, 'error while stopping'))
      .finally(() => {
        log.flush?.();
        process.exit(0);
      });
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return (reason) => {
    if (!stopping) begin({ reason });
  };
}
