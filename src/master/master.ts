// `startMaster`: validates options, builds the master's state and serves the Master gRPC
// service until stop().
import { GfsError } from '../common/errors.js';
import { type Logger, silentLogger } from '../common/logger.js';
import { CHUNK_SIZE_UNIT, DEFAULT_CHUNK_SIZE } from '../common/limits.js';
import { proto } from '../common/proto.js';
import { startServer, stopServer, unaryHandler } from '../common/rpc.js';
import { listenSessions, type SessionListener } from '../common/session-listener.js';
import { MasterCore, type MasterConfig } from './core.js';
import type { RepairOptions } from './replication-scheduler.js';
import { SYNC_MODES, type SyncMode } from './oplog.js';
import { GC_DELAY_MS } from './server-registry.js';
import { freeOrphans } from './recovery.js';
import { startMasterHttp, type MasterHttp } from './http.js';
import { masterHandlers } from './service.js';
import { masterSecurity, type MasterIdentity, type MasterSecurityOptions } from './security.js';
import { CHECKPOINT_LOG_BYTES, MasterStore } from './store.js';

export const HEARTBEAT_MS = 1000;
export const DEFAULT_REPLICATION = 3;
/** Largest chunk size accepted (chunk offsets travel as uint64, lengths must fit a Buffer). */
export const MAX_CHUNK_SIZE = 1024 * 1024 * 1024;
export const MAX_REPLICATION = 16;

export interface MasterOptions extends MasterSecurityOptions {
  /** Operation log + checkpoints go here (created); without it the master is in-memory only. */
  dataDir?: string;
  /**
   * When replies may go out (oplog.ts SyncMode): 'background' (default) once the change is
   * written to the log, with fdatasyncs right behind; 'group' after a shared fdatasync;
   * 'each' after one fdatasync per change.
   */
  syncMode?: SyncMode;
  /** Checkpoint when the log segment passes this many bytes; default CHECKPOINT_LOG_BYTES (64 MiB). */
  checkpointLogBytes?: number;
  host?: string; // default '127.0.0.1'
  port?: number; // default 0 = ephemeral
  /**
   * Port of the session listener (master calls as frames over plain TCP, or TLS with `tls`;
   * common/session-listener.ts), on `host`; default 0 = ephemeral, told to clients by the
   * SessionPort call; false = none (clients keep to the gRPC session stream).
   */
  sessionPort?: number | false;
  chunkSize?: number; // default DEFAULT_CHUNK_SIZE (64 MiB); must be a multiple of 64 KiB
  replication?: number; // default goal 3
  heartbeatMs?: number; // told to chunkservers in RegisterReply; default HEARTBEAT_MS = 1000
  suspectAfterMs?: number; // default 3 * heartbeat
  deadAfterMs?: number; // default 10 * heartbeat
  gcDelayMs?: number; // default GC_DELAY_MS: the chunks of deleted files wait this long before they are dropped
  /** Re-replication and rebalancing tunables; see REPAIR_DEFAULTS (replication-scheduler.ts). */
  repair?: Partial<RepairOptions>;
  log?: Logger; // default silentLogger
  /** HTTP status page + /api/status + /metrics + /healthz on this port (0 = ephemeral); absent = none. */
  httpPort?: number;
  /** Listen address of the HTTP port, default `host`. */
  httpHost?: string;
}

/**
 * After a restart, how long a chunk with no reported replica is treated as "not reported yet"
 * (EHOSTDOWN, clients retry) rather than lost: as long as a silent server takes to be declared
 * dead, so every live chunkserver (backing off while the master was down) has re-registered
 * with its full chunk report.
 */
export function reportGraceMs(cfg: MasterConfig): number {
  return cfg.deadAfterMs;
}

export interface MasterHandle extends MasterIdentity {
  addr: string;
  port: number;
  /** "http://host:port" of the status page when httpPort was given. */
  httpUrl?: string;
  /** The session listener (absent with sessionPort: false). */
  sessions?: Pick<SessionListener, 'port' | 'connections'>;
  stop(): Promise<void>;
}

/** Turns options into a checked config; throws EINVAL naming the bad option. */
export function masterConfig(opts: MasterOptions): MasterConfig & { host: string; port: number } {
  const bad = (msg: string) => new GfsError('EINVAL', `master options: ${msg}`);
  const int = (name: string, v: number | undefined, dflt: number, min: number, max: number) => {
    const n = v ?? dflt;
    if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < min || n > max) {
      throw bad(`${name} must be an integer in [${min}, ${max}], got ${String(v)}`);
    }
    return n;
  };
  if (opts.dataDir !== undefined && (typeof opts.dataDir !== 'string' || opts.dataDir === '')) {
    throw bad('dataDir must be a non-empty string');
  }
  const host = opts.host ?? '127.0.0.1';
  if (typeof host !== 'string' || host === '') throw bad('host must be a non-empty string');
  const port = int('port', opts.port, 0, 0, 65535);
  const chunkSize = int('chunkSize', opts.chunkSize, DEFAULT_CHUNK_SIZE, 1, MAX_CHUNK_SIZE);
  if (chunkSize % CHUNK_SIZE_UNIT) throw bad(`chunkSize must be a multiple of ${CHUNK_SIZE_UNIT} bytes (64 KiB), got ${chunkSize}`);
  const replication = int('replication', opts.replication, DEFAULT_REPLICATION, 1, MAX_REPLICATION);
  const heartbeatMs = int('heartbeatMs', opts.heartbeatMs, HEARTBEAT_MS, 10, 3_600_000);
  const suspectAfterMs = int('suspectAfterMs', opts.suspectAfterMs, 3 * heartbeatMs, heartbeatMs, 86_400_000);
  const deadAfterMs = int('deadAfterMs', opts.deadAfterMs, 10 * heartbeatMs, suspectAfterMs + 1, 86_400_000);
  const gcDelayMs = int('gcDelayMs', opts.gcDelayMs, GC_DELAY_MS, 0, 86_400_000);
  if (opts.syncMode !== undefined && !SYNC_MODES.includes(opts.syncMode)) {
    throw bad(`syncMode must be one of ${SYNC_MODES.join(', ')}, got ${String(opts.syncMode)}`);
  }
  int('checkpointLogBytes', opts.checkpointLogBytes, CHECKPOINT_LOG_BYTES, 4096, 2 ** 40);
  const repair = opts.repair ? Object.fromEntries(Object.entries(opts.repair).filter(([, v]) => v !== undefined)) : undefined;
  return { host, port, chunkSize, replication, heartbeatMs, suspectAfterMs, deadAfterMs, gcDelayMs, repair };
}

export async function startMaster(opts: MasterOptions): Promise<MasterHandle> {
  const cfg = masterConfig(opts ?? {});
  const log = opts.log ?? silentLogger;
  const sec = masterSecurity(opts, log);
  let store: MasterStore | undefined;
  let core: MasterCore;
  if (opts.dataDir !== undefined) {
    const t0 = performance.now();
    const opened = await MasterStore.open({
      dir: opts.dataDir,
      chunkSize: cfg.chunkSize,
      chunkSizeExplicit: opts.chunkSize !== undefined,
      replication: cfg.replication,
      syncMode: opts.syncMode ?? 'background',
      checkpointLogBytes: opts.checkpointLogBytes,
      log,
    });
    store = opened.store;
    cfg.chunkSize = store.chunkSize;
    core = new MasterCore(cfg, log, { state: opened.state, calls: sec.calls });
    core.attachJournal(store);
    try {
      // Open counts are not persistent: a file unlinked while open has nobody holding it now.
      const orphans = freeOrphans(core);
      await core.durable();
      const r = store.recovery;
      if (r.state) core.awaitReports(reportGraceMs(cfg));
      log.info(
        {
          dir: opts.dataDir,
          fresh: !r.state,
          checkpoint: r.checkpointFile,
          checkpointSeq: r.checkpointSeq,
          checkpointBytes: r.checkpointBytes,
          badCheckpoints: r.badCheckpoints,
          segmentsReplayed: r.segmentsReplayed,
          recordsReplayed: r.recordsReplayed,
          tornTail: r.tornTail,
          inodes: opened.state.ns.inodes.size,
          chunks: opened.state.chunks.size,
          orphansFreed: orphans.length,
          checkpointMs: Math.round(r.checkpointMs),
          replayMs: Math.round(r.replayMs),
          totalMs: Math.round(performance.now() - t0),
          segment: store.seq,
          syncMode: store.syncMode,
        },
        'master state recovered',
      );
    } catch (err) {
      await store.close();
      throw err;
    }
  } else {
    core = new MasterCore(cfg, log, { calls: sec.calls });
  }
  let started: Awaited<ReturnType<typeof startServer>>;
  let sessions: SessionListener | undefined;
  try {
    let sessionPort = 0;
    const wrapped = sec.handlers(core, { ...masterHandlers(core), SessionPort: unaryHandler(log, 'SessionPort', () => ({ port: sessionPort })) });
    if (opts.sessionPort !== false) {
      sessions = await listenSessions({ host: cfg.host, port: opts.sessionPort ?? 0, sessions: wrapped.sessions, tls: opts.tls, log });
      sessionPort = sessions.port;
    }
    started = await startServer([[proto().gfs.Master.service, wrapped.handlers]], cfg.host, cfg.port, sec.credentials);
  } catch (err) {
    await sessions?.close();
    await store?.close();
    throw err;
  }
  const { server, port } = started;
  core.registry.start();
  core.repair.start();
  const addr = `${cfg.host.includes(':') && !cfg.host.startsWith('[') ? `[${cfg.host}]` : cfg.host}:${port}`;
  let http: MasterHttp | undefined;
  if (opts.httpPort !== undefined) {
    try {
      http = await startMasterHttp({ core, addr, host: opts.httpHost ?? cfg.host, port: opts.httpPort, log, logStats: store ? () => store!.logStats : undefined });
    } catch (err) {
      core.repair.stop();
      core.registry.stop();
      await stopServer(server);
      await sessions?.close();
      core.close();
      await store?.close();
      throw err;
    }
  }
  log.info(
    { addr, sessionPort: sessions?.port, chunkSize: cfg.chunkSize, replication: cfg.replication, heartbeatMs: cfg.heartbeatMs, dataDir: opts.dataDir, repair: core.repair.opts },
    'master listening',
  );
  let stopped: Promise<void> | undefined;
  return {
    ...sec.identity,
    addr,
    port,
    httpUrl: http?.url,
    sessions,
    stop() {
      stopped ??= (async () => {
        await http?.close();
        core.repair.stop();
        core.registry.stop();
        await sessions?.close();
        await stopServer(server);
        core.close();
        await store?.close({ checkpoint: true });
        log.info({ addr }, 'master stopped');
      })();
      return stopped;
    },
  };
}
