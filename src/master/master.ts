// `startMaster`: validates options, builds the master's state and serves the Master gRPC
// service until stop().
import { GfsError } from '../common/errors.js';
import { type Logger, silentLogger } from '../common/logger.js';
import { CHECKSUM_BLOCK, DEFAULT_CHUNK_SIZE } from '../common/limits.js';
import { proto } from '../common/proto.js';
import { startServer, stopServer } from '../common/rpc.js';
import { MasterCore, type MasterConfig } from './core.js';
import { masterHandlers } from './service.js';

export const HEARTBEAT_MS = 1000;
export const DEFAULT_REPLICATION = 3;
/** Largest chunk size accepted (chunk offsets travel as uint64, lengths must fit a Buffer). */
export const MAX_CHUNK_SIZE = 1024 * 1024 * 1024;
export const MAX_REPLICATION = 16;

export interface MasterOptions {
  dataDir?: string; // unused until the durability issue; accept it
  host?: string; // default '127.0.0.1'
  port?: number; // default 0 = ephemeral
  chunkSize?: number; // default DEFAULT_CHUNK_SIZE (64 MiB); must be a multiple of 64 KiB
  replication?: number; // default goal 3
  heartbeatMs?: number; // told to chunkservers in RegisterReply; default HEARTBEAT_MS = 1000
  suspectAfterMs?: number; // default 3 * heartbeat
  deadAfterMs?: number; // default 10 * heartbeat
  log?: Logger; // default silentLogger
}

export interface MasterHandle {
  addr: string;
  port: number;
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
  if (chunkSize % CHECKSUM_BLOCK) throw bad(`chunkSize must be a multiple of ${CHECKSUM_BLOCK} bytes (64 KiB), got ${chunkSize}`);
  const replication = int('replication', opts.replication, DEFAULT_REPLICATION, 1, MAX_REPLICATION);
  const heartbeatMs = int('heartbeatMs', opts.heartbeatMs, HEARTBEAT_MS, 10, 3_600_000);
  const suspectAfterMs = int('suspectAfterMs', opts.suspectAfterMs, 3 * heartbeatMs, heartbeatMs, 86_400_000);
  const deadAfterMs = int('deadAfterMs', opts.deadAfterMs, 10 * heartbeatMs, suspectAfterMs + 1, 86_400_000);
  return { host, port, chunkSize, replication, heartbeatMs, suspectAfterMs, deadAfterMs };
}

export async function startMaster(opts: MasterOptions): Promise<MasterHandle> {
  const cfg = masterConfig(opts ?? {});
  const log = opts.log ?? silentLogger;
  const core = new MasterCore(cfg, log);
  const { server, port } = await startServer([[proto().gfs.Master.service, masterHandlers(core)]], cfg.host, cfg.port);
  core.registry.start();
  const addr = `${cfg.host.includes(':') && !cfg.host.startsWith('[') ? `[${cfg.host}]` : cfg.host}:${port}`;
  log.info(
    { addr, chunkSize: cfg.chunkSize, replication: cfg.replication, heartbeatMs: cfg.heartbeatMs, dataDir: opts.dataDir },
    'master listening',
  );
  let stopped: Promise<void> | undefined;
  return {
    addr,
    port,
    stop() {
      stopped ??= (async () => {
        core.registry.stop();
        await stopServer(server);
        core.close();
        log.info({ addr }, 'master stopped');
      })();
      return stopped;
    },
  };
}
