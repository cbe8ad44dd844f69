// The in-process side of the telemetry (issue 6 item 2), read from each gfs daemon's /metrics
// (Prometheus text) when `gfs up` announces the endpoints: event-loop delay (the daemons'
// gauge covers the time since the previous scrape, so every scrape starts a new window), GC
// pause time (cumulative nodejs_gc_duration_seconds_sum), and in-flight / queue-depth gauges.
// Absent endpoints or failed scrapes are simply missing from the result.

/** What one scrape of one process gives. */
export interface Scrape {
  /** Event-loop delay p99 and max over the window since the previous scrape (seconds). */
  loopP99?: number;
  loopMax?: number;
  /** Cumulative GC pause seconds (all kinds). */
  gcSec?: number;
  /** Gauges named *in_flight*, *queue_depth*, *push_buffers*, summed over their labels. */
  gauges: Record<string, number>;
}

const GAUGE_RE = /(in_flight|queue_depth|push_buffers|repair_queue)$/;

export function parsePrometheus(text: string): Scrape {
  const s: Scrape = { gauges: {} };
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const [, name, labels = '', raw] = m as unknown as [string, string, string | undefined, string];
    const v = Number(raw);
    if (!Number.isFinite(v)) continue;
    if (name === 'gfs_event_loop_delay_seconds') {
      if (labels.includes('quantile="0.99"')) s.loopP99 = v;
      else if (labels.includes('quantile="1"')) s.loopMax = v;
    } else if (name === 'nodejs_gc_duration_seconds_sum') {
      s.gcSec = (s.gcSec ?? 0) + v;
    } else if (GAUGE_RE.test(name)) {
      s.gauges[name] = (s.gauges[name] ?? 0) + v;
    }
  }
  return s;
}

export async function scrape(url: string, timeoutMs = 2000): Promise<Scrape | undefined> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    if (!res.ok) return undefined;
    return parsePrometheus(await res.text());
  } catch {
    return undefined;
  }
}

/** /metrics URLs per process label from the banner `gfs up` prints. */
export function metricsEndpoints(upOutput: string): Record<string, string> {
  const out: Record<string, string> = {};
  const master = /^gfs: status page (\S+?)\/? /m.exec(upOutput);
  if (master) out.master = `${master[1]}/metrics`;
  for (const m of upOutput.matchAll(/^gfs: (chunkserver-\d+) \S+ \(status (\S+?)\/?\)/gm)) out[m[1]!] = `${m[2]}/metrics`;
  const mount = /^gfs: mount metrics (\S+)$/m.exec(upOutput);
  if (mount) out.mount = mount[1]!;
  return out;
}
