// The master's HTTP port: `/` the status page (status-page.ts, refreshes itself from
// /api/status), `/api/status` (cluster summary as JSON), `/metrics` (Prometheus) and `/healthz`.
// Everything is computed from the in-memory tables on request; the O(chunks) health scan is
// cached for STATUS_CACHE_MS so a page left open on many screens costs one scan per second.
import { commonRoutes, html, json, startHttpServer, type HttpHandle } from '../common/http-server.js';
import type { Logger } from '../common/logger.js';
import { counterFn, gaugeFn, initProcessMetrics, labelledCounterFn, labelledGaugeFn, rpcServedTotal } from '../common/metrics.js';
import type { OpLogStats } from './oplog.js';
import { ChunkOps } from './chunk-ops.js';
import { ClusterOps } from './cluster-ops.js';
import type { MasterCore } from './core.js';
import { MASTER_STATUS_PAGE } from './status-page.js';

const STATUS_CACHE_MS = 1_000;
/** Ops per second is averaged over this many one-second samples. */
const RATE_WINDOW = 5;
/** Chunkserver-to-master calls and status polls: not counted as client ops. */
const NOT_CLIENT_OPS: ReadonlySet<string> = new Set(['Register', 'Heartbeat', 'ClusterStatus', 'ReportBadReplica']);

export interface MasterHttpOptions {
  core: MasterCore;
  /** The master's gRPC address. */
  addr: string;
  host: string;
  port: number;
  log: Logger;
  /** Operation log counters when the master has a data directory. */
  logStats?: () => OpLogStats;
}

export type MasterStatus = ReturnType<MasterStatusSource['status']>;

export class MasterStatusSource {
  private readonly cluster: ClusterOps;
  private cached: { at: number; value: ReturnType<ClusterOps['clusterStatus']> } | undefined;
  private readonly samples: Array<{ t: number; ops: number }> = [];
  private readonly timer: NodeJS.Timeout;
  readonly startedMs = Date.now();

  constructor(private readonly o: MasterHttpOptions) {
    this.cluster = new ClusterOps(o.core, new ChunkOps(o.core));
    this.sample();
    this.timer = setInterval(() => this.sample(), 1_000);
    this.timer.unref();
  }

  private sample(): void {
    this.samples.push({ t: performance.now(), ops: rpcServedTotal(NOT_CLIENT_OPS) });
    if (this.samples.length > RATE_WINDOW + 1) this.samples.shift();
  }

  opsPerSec(): number {
    const first = this.samples[0]!;
    const now = { t: performance.now(), ops: rpcServedTotal(NOT_CLIENT_OPS) };
    const dt = (now.t - first.t) / 1000;
    return dt > 0.2 ? (now.ops - first.ops) / dt : 0;
  }

  cluster_(): ReturnType<ClusterOps['clusterStatus']> {
    const now = performance.now();
    if (!this.cached || now - this.cached.at > STATUS_CACHE_MS) this.cached = { at: now, value: this.cluster.clusterStatus() };
    return this.cached.value;
  }

  status() {
    const c = this.cluster_();
    const { cfg } = this.o.core;
    let capacity = 0;
    let used = 0;
    const states = { alive: 0, suspect: 0, dead: 0 };
    for (const s of c.servers) {
      states[s.state]++;
      if (s.state !== 'dead') {
        capacity += s.capacity;
        used += s.used;
      }
    }
    return {
      master: this.o.addr,
      nowMs: Date.now(),
      startedMs: this.startedMs,
      pid: process.pid,
      rssBytes: process.memoryUsage.rss(),
      config: {
        chunkSize: cfg.chunkSize,
        replication: cfg.replication,
        heartbeatMs: cfg.heartbeatMs,
        suspectAfterMs: cfg.suspectAfterMs,
        deadAfterMs: cfg.deadAfterMs,
      },
      serverStates: states,
      capacityBytes: capacity,
      usedBytes: used,
      opsPerSec: Math.round(this.opsPerSec() * 10) / 10,
      opsTotal: rpcServedTotal(NOT_CLIENT_OPS),
      oplog: this.o.logStats?.(),
      ...c,
      recentEvents: c.recentEvents.map((e) => ({ ...e })),
    };
  }

  close(): void {
    clearInterval(this.timer);
  }
}

let metricsSource: MasterStatusSource | undefined;
let metricsRegistered = false;

/** Master gauges and counters, registered once per process; they read the current master. */
function registerMasterMetrics(): void {
  if (metricsRegistered) return;
  metricsRegistered = true;
  const c = () => metricsSource?.cluster_();
  labelledGaugeFn('gfs_master_chunkservers', 'Chunkservers known to the master, by failure-detector state', ['state'], () => {
    const n = { alive: 0, suspect: 0, dead: 0 };
    for (const s of c()?.servers ?? []) n[s.state]++;
    return Object.entries(n).map(([state, v]) => [{ state }, v]);
  });
  gaugeFn('gfs_master_chunks', 'Chunks in the chunk table', () => c()?.chunks ?? 0);
  gaugeFn('gfs_master_files', 'Regular files in the namespace', () => c()?.files ?? 0);
  gaugeFn('gfs_master_directories', 'Directories in the namespace', () => c()?.directories ?? 0);
  gaugeFn('gfs_master_chunks_under_replicated', 'Chunks with fewer live replicas than their goal', () => c()?.underReplicated ?? 0);
  gaugeFn('gfs_master_chunks_missing', 'Written chunks with no live replica', () => c()?.missing ?? 0);
  gaugeFn('gfs_master_repair_backlog', 'Chunks waiting for or undergoing re-replication that have a source', () => c()?.repairBacklog ?? 0);
  gaugeFn('gfs_master_repair_queue', 'Chunks in the re-replication queue', () => c()?.repair.queued ?? 0);
  gaugeFn('gfs_master_repair_in_flight', 'Clones in flight (repair and rebalancing)', () => c()?.repair.inFlight ?? 0);
  labelledCounterFn('gfs_master_clones_total', 'Clones ordered by the master, by result', ['result'], () => {
    const r = c()?.repair;
    if (!r) return [];
    return [
      [{ result: 'started' }, r.clonesStarted],
      [{ result: 'succeeded' }, r.clonesSucceeded],
      [{ result: 'failed' }, r.clonesFailed],
      [{ result: 'discarded' }, r.clonesDiscarded],
    ];
  });
  counterFn('gfs_master_cloned_bytes_total', 'Bytes copied by successful clones', () => c()?.repair.bytesCloned ?? 0);
  labelledCounterFn('gfs_master_server_events_total', 'Chunkserver registrations and state transitions, by kind', ['kind'], () =>
    Object.entries(c()?.eventCounts ?? {}).map(([kind, v]) => [{ kind }, v]),
  );
  gaugeFn('gfs_master_capacity_bytes', 'Raw capacity of live chunkservers', () => metricsSource?.status().capacityBytes ?? 0);
  gaugeFn('gfs_master_used_bytes', 'Raw bytes used on live chunkservers', () => metricsSource?.status().usedBytes ?? 0);
  gaugeFn('gfs_master_client_ops_per_second', 'Client RPCs answered per second (5 s average)', () => metricsSource?.opsPerSec() ?? 0);
  counterFn('gfs_master_oplog_records_total', 'Operation-log records appended', () => metricsSource?.status().oplog?.records ?? 0);
  counterFn('gfs_master_oplog_syncs_total', 'Operation-log fsyncs', () => metricsSource?.status().oplog?.syncs ?? 0);
}

export interface MasterHttp extends HttpHandle {
  source: MasterStatusSource;
}

export async function startMasterHttp(o: MasterHttpOptions): Promise<MasterHttp> {
  initProcessMetrics('master');
  registerMasterMetrics();
  const source = new MasterStatusSource(o);
  metricsSource = source;
  const server = await startHttpServer(
    o.host,
    o.port,
    {
      '/': () => html(MASTER_STATUS_PAGE),
      '/index.html': () => html(MASTER_STATUS_PAGE),
      '/api/status': () => json(source.status()),
      ...commonRoutes(),
    },
    o.log,
  );
  return {
    ...server,
    source,
    async close() {
      source.close();
      if (metricsSource === source) metricsSource = undefined;
      await server.close();
    },
  };
}
