// Prometheus metrics (prom-client), shared by every gfs process: the process's default metrics
// (CPU, RSS, heap, GC pauses, event-loop delay from perf_hooks.monitorEventLoopDelay), and
// per-request counters/histograms for RPCs served (unaryHandler), RPCs made by the client
// library and FUSE ops (both through OpStats). Each daemon adds its own gauges, computed when
// scraped (collect callbacks), so they cost nothing between scrapes.
//
// Per-request metrics can be switched off (`--no-metrics` or GFS_METRICS=0) to measure their
// overhead: the hot paths then test one boolean and do nothing else.
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import client from 'prom-client';
import { FastHistogram, type HistogramChild } from './fast-histogram.js';
import { OpStats } from './op-stats.js';

export const registry = new client.Registry();
export const PROMETHEUS_CONTENT_TYPE = registry.contentType;

/** Latency buckets (seconds): 50 µs .. 30 s, roughly x2.5 apart. */
export const LATENCY_BUCKETS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

let perRequest = process.env.GFS_METRICS !== '0' && process.env.GFS_METRICS !== 'false';

/** Are per-request metrics (RPC and FUSE op histograms, byte counters) being recorded? */
export function metricsEnabled(): boolean {
  return perRequest;
}

/** Turns per-request metrics on or off (the `--no-metrics` flag; GFS_METRICS=0 in the environment). */
export function setMetricsEnabled(on: boolean): void {
  perRequest = on;
  syncOpStatsSink();
}

// ---------------------------------------------------------------- process metrics

let processMetricsFor: string | undefined;
const LOOP_RESOLUTION_MS = 10;
let loopDelay: IntervalHistogram | undefined;

/**
 * Default Node.js metrics (process_*, nodejs_* incl. GC and event-loop lag) plus our own
 * event-loop delay percentiles, labelled with the process's role. Idempotent.
 */
export function initProcessMetrics(role: string): void {
  if (processMetricsFor !== undefined) return;
  processMetricsFor = role;
  registry.setDefaultLabels({ role });
  client.collectDefaultMetrics({ register: registry });
  loopDelay = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
  loopDelay.enable();
  const h = loopDelay;
  new client.Gauge({
    name: 'gfs_event_loop_delay_seconds',
    help: 'Event-loop delay since the previous scrape (perf_hooks.monitorEventLoopDelay), by quantile',
    labelNames: ['quantile'],
    registers: [registry],
    collect() {
      if (h.count === 0) return;
      // The samples include the sampling interval itself: subtract it.
      const delay = (ns: number) => Math.max(0, ns - LOOP_RESOLUTION_MS * 1e6) / 1e9;
      this.set({ quantile: '0.5' }, delay(h.percentile(50)));
      this.set({ quantile: '0.99' }, delay(h.percentile(99)));
      this.set({ quantile: '1' }, delay(h.max));
      h.reset();
    },
  });
  new client.Gauge({
    name: 'gfs_metrics_per_request_enabled',
    help: '1 when per-request metrics are recorded (0 after --no-metrics / GFS_METRICS=0)',
    registers: [registry],
    collect() {
      this.set(perRequest ? 1 : 0);
    },
  });
  syncOpStatsSink();
}

/** The Prometheus text of every metric of this process. */
export async function metricsText(): Promise<string> {
  const defaults = processMetricsFor === undefined ? '' : `role="${processMetricsFor.replace(/["\\\n]/g, '_')}"`;
  let text = await registry.metrics();
  if (text && !text.endsWith('\n')) text += '\n';
  for (const h of FAST_HISTOGRAMS) text += h.text(defaults);
  return text;
}

/** A gauge whose value(s) are computed at scrape time. */
export function gaugeFn(name: string, help: string, read: () => number): void {
  new client.Gauge({ name, help, registers: [registry], collect() {
    this.set(read());
  } });
}

/** A gauge with labels, all values computed at scrape time. */
export function labelledGaugeFn(name: string, help: string, labelNames: string[], read: () => Array<[Record<string, string>, number]>): void {
  new client.Gauge({ name, help, labelNames, registers: [registry], collect() {
    this.reset();
    for (const [labels, v] of read()) this.set(labels, v);
  } });
}

/** A counter that mirrors a monotonically growing number kept elsewhere (read at scrape time). */
export function counterFn(name: string, help: string, read: () => number): void {
  let last = 0;
  new client.Counter({ name, help, registers: [registry], collect() {
    const v = read();
    if (v > last) this.inc(v - last);
    last = Math.max(last, v);
  } });
}

/** Labelled version of counterFn. */
export function labelledCounterFn(name: string, help: string, labelNames: string[], read: () => Array<[Record<string, string>, number]>): void {
  const last = new Map<string, number>();
  new client.Counter({ name, help, labelNames, registers: [registry], collect() {
    for (const [labels, v] of read()) {
      const key = JSON.stringify(labels);
      const prev = last.get(key) ?? 0;
      if (v > prev) this.inc(labels, v - prev);
      last.set(key, Math.max(prev, v));
    }
  } });
}

// ---------------------------------------------------------------- RPCs served

const serverRpcSeconds = new FastHistogram(
  'gfs_rpc_server_duration_seconds',
  'Time to answer an RPC served by this process, by method and outcome (ok|error); _count is the request count',
  ['method', 'outcome'],
  LATENCY_BUCKETS,
);
/** RPCs being served now, by method (a gauge read at scrape time). */
const serverInFlight = new Map<string, number>();
labelledGaugeFn('gfs_rpc_server_in_flight', 'RPCs being served now, by method', ['method'], () =>
  [...serverInFlight].map(([method, n]) => [{ method }, n]),
);

const serverChildren = new Map<string, { ok: HistogramChild; error: HistogramChild }>();

/** RPCs served since start, by method (always counted: cheap; feeds "ops per second"). */
export const rpcServedCounts = new Map<string, number>();

function serverChild(method: string) {
  let c = serverChildren.get(method);
  if (!c) {
    c = { ok: serverRpcSeconds.labels(method, 'ok'), error: serverRpcSeconds.labels(method, 'error') };
    serverChildren.set(method, c);
  }
  return c;
}

/** Called when the master/chunkserver answers an RPC (one Map update per call when metrics are off). */
export type RpcDone = (failed: boolean) => void;
const NOOP_DONE: RpcDone = () => undefined;

/** Starts timing a served RPC; call the result with whether it failed. */
export function serverRpcStarted(method: string): RpcDone {
  rpcServedCounts.set(method, (rpcServedCounts.get(method) ?? 0) + 1);
  if (!perRequest) return NOOP_DONE;
  const c = serverChild(method);
  serverInFlight.set(method, (serverInFlight.get(method) ?? 0) + 1);
  const t = performance.now();
  return (failed) => {
    serverInFlight.set(method, serverInFlight.get(method)! - 1);
    (failed ? c.error : c.ok).observe((performance.now() - t) / 1000);
  };
}

/** Total of rpcServedCounts except the given methods. */
export function rpcServedTotal(except: ReadonlySet<string> = new Set()): number {
  let n = 0;
  for (const [k, v] of rpcServedCounts) if (!except.has(k)) n += v;
  return n;
}

// ---------------------------------------------------------------- bytes

const bytesMoved = new Map<string, number>();
labelledCounterFn('gfs_bytes_total', 'Bytes moved by this process, by direction (read|written|pushed|forwarded|cloned)', ['direction'], () =>
  [...bytesMoved].map(([direction, n]) => [{ direction }, n]),
);

/** Counts bytes read from / written to disk or the network (skipped when metrics are off). */
export function countBytes(direction: string, n: number): void {
  if (!perRequest || n <= 0) return;
  bytesMoved.set(direction, (bytesMoved.get(direction) ?? 0) + n);
}

// ---------------------------------------------------------------- client RPCs and FUSE ops (OpStats)

const clientRpcSeconds = new FastHistogram(
  'gfs_rpc_client_duration_seconds',
  'Time of RPCs made by the client library (incl. retries), by target service, method and outcome',
  ['service', 'method', 'outcome'],
  LATENCY_BUCKETS,
);
const fuseOpSeconds = new FastHistogram(
  'gfs_fuse_op_duration_seconds',
  'Time to answer a FUSE operation, by op and outcome; _count is the op count',
  ['op', 'outcome'],
  LATENCY_BUCKETS,
);
const FAST_HISTOGRAMS = [serverRpcSeconds, clientRpcSeconds, fuseOpSeconds];
const opChildren = new Map<string, { ok: HistogramChild; error: HistogramChild }>();

function opChild(name: string) {
  let c = opChildren.get(name);
  if (!c) {
    const dot = name.indexOf('.');
    if (dot > 0) {
      const service = name.slice(0, dot);
      const method = name.slice(dot + 1);
      c = { ok: clientRpcSeconds.labels(service, method, 'ok'), error: clientRpcSeconds.labels(service, method, 'error') };
    } else {
      c = { ok: fuseOpSeconds.labels(name, 'ok'), error: fuseOpSeconds.labels(name, 'error') };
    }
    opChildren.set(name, c);
  }
  return c;
}

/**
 * OpStats names RPCs "service.Method" (master.GetAttr, chunk.ReadSmall) and FUSE ops by their
 * bare name (getattr, read); both are recorded into histograms while metrics are on in a
 * process that called initProcessMetrics (the mount, the benchmark when asked).
 */
function syncOpStatsSink(): void {
  OpStats.sink = perRequest && processMetricsFor !== undefined ? (name, ms, failed) => (failed ? opChild(name).error : opChild(name).ok).observe(ms / 1000) : undefined;
}
