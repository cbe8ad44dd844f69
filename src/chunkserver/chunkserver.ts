// `startChunkserver`: opens the chunk store, binds the ChunkServer gRPC service and starts the
// register/heartbeat loop and the scrubber. Resolves even while the master is unreachable (the
// loop retries).
import { mkdir, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import { GfsError } from '../common/errors.js';
import { MiB } from '../common/limits.js';
import { silentLogger, type Logger } from '../common/logger.js';
import { proto } from '../common/proto.js';
import { ClientPool, parseAddr, startServer, stopServer } from '../common/rpc.js';
import type { ChunkServerClient } from '../generated/gfs/ChunkServer.js';
import { Admission } from './admission.js';
import { ChunkStore } from './chunk-store.js';
import { CLONE_BYTES_PER_SEC, Cloner, type CloneStats } from './cloner.js';
import { HEARTBEAT_MS, HeartbeatLoop } from './heartbeat.js';
import { PUSH_BUFFER_BYTES, PushBuffers } from './push-buffers.js';
import { SCRUB_BYTES_PER_SEC, SCRUB_IDLE_MS, SCRUB_PASS_PAUSE_MS, Scrubber, type ScrubStats } from './scrubber.js';
import { chunkServerHandlers } from './service.js';
import { chunkserverSecurity, type ChunkserverSecurityOptions } from './security.js';
import { startChunkserverHttp } from './http.js';
import type { HttpHandle } from '../common/http-server.js';
import { WriteOrder } from './write-order.js';
import { startDataServer, type DataServer } from './data-server.js';
import { DataConnPool } from '../common/data-conn.js';
import { authValue } from '../common/auth.js';

export { CLONE_BYTES_PER_SEC, HEARTBEAT_MS, PUSH_BUFFER_BYTES, SCRUB_BYTES_PER_SEC, SCRUB_IDLE_MS, SCRUB_PASS_PAUSE_MS };
export type { CloneStats, ScrubStats };

/** Running calls get this long to finish when the server stops. */
export const STOP_GRACE_MS = 2_000;
/** Free-space figures from statfs are reused for this long. */
const STATFS_CACHE_MS = 1_000;

export interface ChunkserverOptions extends ChunkserverSecurityOptions {
  dataDir: string; // created if missing
  master: string; // "host:port"
  host?: string; // listen host, default '127.0.0.1'
  port?: number; // default 0 = ephemeral
  advertise?: string; // address given to the master, default `${host}:${boundPort}`
  /** Data channel port (reads and writes over framed TCP); default 0 = ephemeral; false = none. */
  dataPort?: number | false;
  /** Data channel address given to the master, default `${host}:${boundDataPort}`. */
  advertiseData?: string;
  heartbeatMs?: number; // default HEARTBEAT_MS = 1000
  pushBufferBytes?: number; // bound on buffered push data, default 512 MiB
  scrubBytesPerSec?: number; // scrubbing rate, default SCRUB_BYTES_PER_SEC = 32 MiB/s; 0 disables
  scrubIdleMs?: number; // chunks used more recently are not scrubbed, default SCRUB_IDLE_MS = 10 s
  scrubPassPauseMs?: number; // pause between scrub passes, default SCRUB_PASS_PAUSE_MS = 60 s
  cloneBytesPerSec?: number; // bandwidth of one clone unless the request says, default 64 MiB/s
  log?: Logger; // default silentLogger
  /** Status page + /api/status + /metrics + /healthz on this port (0 = ephemeral); absent = none. */
  httpPort?: number;
  /** Listen address of the HTTP port, default `host`. */
  httpHost?: string;
}

export interface ChunkserverHandle {
  serverId: string;
  addr: string;
  port: number;
  /** Data channel address ("" when it is off). */
  dataAddr: string;
  /** Scrubber counters (for status and metrics). */
  readonly scrubStats: ScrubStats;
  /** Clone counters (for status and metrics). */
  readonly cloneStats: CloneStats;
  /** "http://host:port" of the status page when httpPort was given. */
  httpUrl?: string;
  stop(): Promise<void>;
}

/** capacity = free bytes of the data directory's filesystem + bytes held in chunks. */
function capacityProbe(dir: string, store: ChunkStore, log: Logger): () => Promise<number> {
  let at = 0;
  let free = 0;
  return async () => {
    if (Date.now() - at >= STATFS_CACHE_MS) {
      try {
        const s = await statfs(dir);
        free = s.bavail * s.bsize;
      } catch (err) {
        log.warn({ dir, err: (err as Error).message }, 'statfs failed');
      }
      at = Date.now();
    }
    return free + store.used;
  };
}

export async function startChunkserver(opts: ChunkserverOptions): Promise<ChunkserverHandle> {
  const log = opts.log ?? silentLogger;
  const host = opts.host ?? '127.0.0.1';
  parseAddr(opts.master);
  if (opts.advertise !== undefined) parseAddr(opts.advertise);
  const pushBytes = opts.pushBufferBytes ?? PUSH_BUFFER_BYTES;
  if (!(pushBytes >= MiB)) throw new GfsError('EINVAL', `pushBufferBytes ${pushBytes} is below 1 MiB`);
  if (opts.heartbeatMs !== undefined && !(opts.heartbeatMs > 0)) throw new GfsError('EINVAL', `bad heartbeatMs ${opts.heartbeatMs}`);
  for (const k of ['scrubBytesPerSec', 'scrubIdleMs', 'scrubPassPauseMs', 'cloneBytesPerSec'] as const) {
    const v = opts[k];
    if (v !== undefined && !(Number.isFinite(v) && v >= 0)) throw new GfsError('EINVAL', `bad ${k} ${v}`);
  }

  const sec = chunkserverSecurity(opts);
  await mkdir(opts.dataDir, { recursive: true });
  const store = await ChunkStore.open(opts.dataDir, log);
  const buffers = new PushBuffers(pushBytes);
  const order = new WriteOrder();
  const admission = new Admission();
  const peers = new ClientPool<ChunkServerClient>(proto().gfs.ChunkServer, sec.client);
  const capacity = capacityProbe(opts.dataDir, store, log);
  let addr = '';
  let heartbeat: HeartbeatLoop | undefined;
  const cloner = new Cloner({ store, peers, admission, self: () => addr, log, bytesPerSec: opts.cloneBytesPerSec || undefined });
  const scrubber = new Scrubber({
    store,
    admission,
    log,
    bytesPerSec: opts.scrubBytesPerSec,
    idleMs: opts.scrubIdleMs,
    passPauseMs: opts.scrubPassPauseMs,
  });

  const handlers = chunkServerHandlers({
    store,
    buffers,
    order,
    admission,
    peers,
    cloner,
    self: () => addr,
    serverId: () => heartbeat?.serverId ?? '',
    capacity,
    log,
    tokens: sec.tokens,
  });

  let bound: Awaited<ReturnType<typeof startServer>>;
  try {
    bound = await startServer([[proto().gfs.ChunkServer.service, sec.wrap(handlers, log)]], host, opts.port ?? 0, sec.credentials);
  } catch (err) {
    buffers.close();
    await store.close();
    throw err;
  }
  const { server, port } = bound;
  addr = opts.advertise ?? `${host}:${port}`;

  let dataAddr = '';
  let data: DataServer | undefined;
  const dataPeers = new DataConnPool({ auth: authValue(sec.client), tls: opts.tls });
  if (opts.dataPort !== false) {
    if (opts.advertiseData !== undefined) parseAddr(opts.advertiseData);
    try {
      data = await startDataServer(
        { store, order, admission, peers: dataPeers, self: () => dataAddr, serverId: () => heartbeat?.serverId ?? '', keys: sec.keys, tokens: sec.tokens, tls: opts.tls, log },
        host,
        opts.dataPort ?? 0,
      );
    } catch (err) {
      await stopServer(server, 0);
      buffers.close();
      await store.close();
      throw err;
    }
    dataAddr = opts.advertiseData ?? `${host.includes(':') && !host.startsWith('[') ? `[${host}]` : host}:${data.port}`;
  }

  heartbeat = new HeartbeatLoop({
    master: opts.master,
    store,
    admission,
    addr,
    dataAddr,
    serverIdFile: join(opts.dataDir, 'server-id'),
    capacity,
    heartbeatMs: opts.heartbeatMs,
    onDeleted: (handles) => handles.forEach((h) => order.forget(h)),
    log,
    security: sec.client,
  });
  const hb = heartbeat;
  await hb.start();
  scrubber.start();
  let http: HttpHandle | undefined;
  if (opts.httpPort !== undefined) {
    http = await startChunkserverHttp({
      host: opts.httpHost ?? host,
      port: opts.httpPort,
      log,
      serverId: () => hb.serverId,
      addr,
      master: opts.master,
      registered: () => hb.isRegistered,
      store,
      admission,
      buffers,
      capacity,
      scrubStats: () => scrubber.stats,
      cloneStats: () => cloner.stats,
    }).catch(async (err) => {
      await hb.stop();
      await scrubber.stop();
      await data?.close();
      dataPeers.close();
      await stopServer(server, 0);
      buffers.close();
      await store.close();
      throw err;
    });
  }
  log.info({ server: hb.serverId, addr, dataAddr, dataDir: opts.dataDir, chunks: store.chunkCount }, 'chunkserver started');

  let stopping: Promise<void> | undefined;
  return {
    get serverId() {
      return hb.serverId;
    },
    addr,
    port,
    dataAddr,
    get scrubStats() {
      return scrubber.stats;
    },
    get cloneStats() {
      return cloner.stats;
    },
    httpUrl: http?.url,
    stop() {
      stopping ??= (async () => {
        await http?.close();
        await hb.stop();
        await scrubber.stop();
        await cloner.close();
        await data?.close();
        dataPeers.close();
        await stopServer(server, STOP_GRACE_MS);
        peers.close();
        buffers.close();
        await store.close();
        log.info({ server: hb.serverId, addr }, 'chunkserver stopped');
      })();
      return stopping;
    },
  };
}
