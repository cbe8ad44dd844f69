// Outside-visible telemetry of the processes under test: CPU% (and the kernel's share of it)
// and RSS of each daemon, read from /proc/<pid>/stat and /proc/<pid>/status every second (and
// at every workload boundary, so short workloads get exact CPU figures too). Per-workload
// mean/max are computed afterwards from the timeline and the [start, end] of each workload.
// Bytes written to the disks under the data directories are sampled alongside (disk-writes.ts).
// In-process figures (event-loop delay, GC, queue depths) are not visible from here; they come
// with the daemons' /metrics.
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { bytesWritten } from './disk-writes.js';
import { scrape, type Scrape } from './metrics-scrape.js';

/** A process to watch: a stable label ("master", "chunkserver-1", ...) and its pid. */
export interface Watched {
  label: string;
  pid: number;
}

interface Point {
  /** ms since the sampler's epoch (performance.now()). */
  t: number;
  /** label -> cumulative CPU seconds (utime + stime), of them in the kernel (stime), RSS bytes. */
  procs: Record<string, { cpuSec: number; sysSec: number; rssBytes: number }>;
  /** Cumulative bytes written to the watched disks (undefined: none watched or readable). */
  diskBytes?: number;
}

export interface ProcStats {
  cpuPctMean: number;
  cpuPctMax: number;
  /**
   * Share of the CPU time spent in the kernel (%): what a process costs in syscalls, page
   * faults and the file system under it (a chunkserver creating files on ext4) rather than in
   * its own code.
   */
  sysPct: number;
  rssMBMean: number;
  rssMBMax: number;
  /** From the process's /metrics, when it has one: worst 1 s event-loop delay p99, and max. */
  loopP99MsMax?: number;
  loopMaxMs?: number;
  /** GC pause time during the workload. */
  gcMs?: number;
  /** In-flight / queue-depth gauges: mean and max over the samples. */
  gauges?: Record<string, { mean: number; max: number }>;
}

export interface PhaseTelemetry {
  system: string;
  run: number;
  workload: string;
  seconds: number;
  /** MB (1e6 bytes) written to the disks under the data directories during the workload, by anyone. */
  diskWriteMB?: number;
  processes: Record<string, ProcStats>;
}

let clkTck = 0;
function ticksPerSecond(): number {
  if (clkTck) return clkTck;
  try {
    clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    clkTck = 100;
  }
  return clkTck;
}

/** utime+stime and stime in seconds and VmRSS in bytes, or undefined when the process is gone. */
export function readProc(pid: number): { cpuSec: number; sysSec: number; rssBytes: number; ppid: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // rest[0] is field 3 (state); utime/stime are fields 14/15, ppid field 4.
    const ppid = Number(rest[1]);
    const sysSec = Number(rest[12]) / ticksPerSecond();
    const cpuSec = Number(rest[11]) / ticksPerSecond() + sysSec;
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
    return { cpuSec, sysSec, rssBytes: m ? Number(m[1]) * 1024 : 0, ppid };
  } catch {
    return undefined;
  }
}

/** Pids whose parent is `ppid` (scans /proc), with their argv. */
export function childrenOf(ppid: number): Array<{ pid: number; argv: string[] }> {
  const out: Array<{ pid: number; argv: string[] }> = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    const p = readProc(Number(e));
    if (!p || p.ppid !== ppid) continue;
    try {
      const argv = readFileSync(`/proc/${e}/cmdline`, 'utf8').split('\0').filter(Boolean);
      out.push({ pid: Number(e), argv });
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

export class ProcSampler {
  private readonly points: Point[] = [];
  private watched: Watched[] = [];
  private endpoints: Record<string, string> = {};
  private readonly scrapes: Array<{ t: number; label: string; s: Scrape }> = [];
  private readonly pending = new Set<Promise<void>>();
  private timer?: NodeJS.Timeout;
  private readonly phases: Array<{ system: string; run: number; workload: string; t0: number; t1: number }> = [];
  private open?: { system: string; run: number; workload: string; t0: number };
  private disks: string[] = [];

  constructor(private readonly everyMs = 1000) {}

  /** Whole-disk devices (diskstats names) whose written bytes every sample records. */
  watchDisks(devices: readonly string[]): void {
    this.disks = [...devices];
  }

  /**
   * Replaces the set of watched processes (a new cluster came up) and takes a sample.
   * `endpoints`: /metrics URL per process label, scraped along with every sample.
   */
  watch(procs: Watched[], endpoints: Record<string, string> = {}): void {
    this.watched = procs;
    this.endpoints = endpoints;
    this.sample();
    if (!this.timer) {
      this.timer = setInterval(() => this.sample(), this.everyMs);
      this.timer.unref();
    }
  }

  unwatch(): void {
    this.sample();
    this.watched = [];
    this.endpoints = {};
  }

  /** Waits for scrapes still in flight (before report()). */
  async flush(): Promise<void> {
    await Promise.all([...this.pending]);
  }

  sample(): number {
    const t = performance.now();
    const procs: Point['procs'] = {};
    for (const w of this.watched) {
      const p = readProc(w.pid);
      if (p) procs[w.label] = { cpuSec: p.cpuSec, sysSec: p.sysSec, rssBytes: p.rssBytes };
    }
    this.points.push({ t, procs, diskBytes: bytesWritten(this.disks) });
    for (const [label, url] of Object.entries(this.endpoints)) {
      const p: Promise<void> = scrape(url).then((sc) => {
        if (sc) this.scrapes.push({ t, label, s: sc });
        this.pending.delete(p);
      });
      this.pending.add(p);
    }
    return t;
  }

  /** Starts a workload (ending any open one). */
  begin(system: string, run: number, workload: string): void {
    this.end();
    this.open = { system, run, workload, t0: this.sample() };
  }

  /** Ends the open workload, if any (optionally naming it now). */
  end(rename?: string): void {
    if (!this.open) return;
    this.phases.push({ ...this.open, ...(rename ? { workload: rename } : {}), t1: this.sample() });
    this.open = undefined;
  }

  stop(): void {
    this.end();
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Per-workload CPU% (mean over the workload, max over 1 s intervals) and RSS (mean, max). */
  report(): PhaseTelemetry[] {
    return this.phases.map((ph) => {
      const pts = this.points.filter((p) => p.t >= ph.t0 && p.t <= ph.t1);
      const labels = new Set(pts.flatMap((p) => Object.keys(p.procs)));
      const processes: Record<string, ProcStats> = {};
      for (const label of labels) {
        const series = pts.filter((p) => p.procs[label]).map((p) => ({ t: p.t, ...p.procs[label]! }));
        if (series.length === 0) continue;
        let cpuMax = 0;
        for (let i = 1; i < series.length; i++) {
          const dt = (series[i]!.t - series[i - 1]!.t) / 1000;
          // Intervals shorter than a few ticks say nothing about CPU%; skip them for the max.
          if (dt >= 0.25) cpuMax = Math.max(cpuMax, (100 * (series[i]!.cpuSec - series[i - 1]!.cpuSec)) / dt);
        }
        const first = series[0]!;
        const last = series[series.length - 1]!;
        const span = (last.t - first.t) / 1000;
        const used = last.cpuSec - first.cpuSec;
        const cpuMean = span > 0 ? (100 * used) / span : 0;
        const rss = series.map((s) => s.rssBytes / 1e6);
        processes[label] = {
          cpuPctMean: round(cpuMean),
          cpuPctMax: round(Math.max(cpuMax, cpuMean)),
          sysPct: used > 0 ? round((100 * (last.sysSec - first.sysSec)) / used) : 0,
          rssMBMean: round(rss.reduce((a, b) => a + b, 0) / rss.length),
          rssMBMax: round(Math.max(...rss)),
          ...this.fromScrapes(label, ph.t0, ph.t1),
        };
      }
      const d0 = pts[0]?.diskBytes;
      const d1 = pts[pts.length - 1]?.diskBytes;
      const diskWriteMB = d0 !== undefined && d1 !== undefined ? round((d1 - d0) / 1e6, 0) : undefined;
      return { system: ph.system, run: ph.run, workload: ph.workload, seconds: round((ph.t1 - ph.t0) / 1000, 3), ...(diskWriteMB !== undefined ? { diskWriteMB } : {}), processes };
    });
  }

  private fromScrapes(label: string, t0: number, t1: number): Partial<ProcStats> {
    const sc = this.scrapes.filter((x) => x.label === label && x.t >= t0 && x.t <= t1).sort((a, b) => a.t - b.t);
    if (sc.length === 0) return {};
    const out: Partial<ProcStats> = {};
    // The event-loop gauge covers the window since the previous scrape: the one taken at t0
    // describes the time before this workload.
    const inside = sc.filter((x) => x.t > t0);
    const p99 = inside.map((x) => x.s.loopP99).filter((v): v is number => v !== undefined);
    const mx = inside.map((x) => x.s.loopMax).filter((v): v is number => v !== undefined);
    if (p99.length) out.loopP99MsMax = round(Math.max(...p99) * 1000, 2);
    if (mx.length) out.loopMaxMs = round(Math.max(...mx) * 1000, 2);
    const gc = sc.map((x) => x.s.gcSec).filter((v): v is number => v !== undefined);
    if (gc.length >= 2) out.gcMs = round((gc[gc.length - 1]! - gc[0]!) * 1000, 1);
    const names = new Set(sc.flatMap((x) => Object.keys(x.s.gauges)));
    if (names.size) {
      out.gauges = {};
      for (const n of names) {
        const v = sc.map((x) => x.s.gauges[n]).filter((g): g is number => g !== undefined);
        out.gauges[n] = { mean: round(v.reduce((a, b) => a + b, 0) / v.length, 2), max: Math.max(...v) };
      }
    }
    return out;
  }
}

const round = (v: number, d = 1) => Math.round(v * 10 ** d) / 10 ** d;

/** Whole-run summary per system and process: time-weighted CPU% mean, max, and RSS. */
export function summarizeTelemetry(phases: PhaseTelemetry[]): Array<{ system: string; process: string } & Omit<ProcStats, 'gauges'> & { busiest: string }> {
  const groups = new Map<string, { system: string; process: string; items: Array<{ s: ProcStats; sec: number; workload: string }> }>();
  for (const ph of phases) {
    for (const [label, s] of Object.entries(ph.processes)) {
      const key = `${ph.system}\0${label}`;
      if (!groups.has(key)) groups.set(key, { system: ph.system, process: label, items: [] });
      groups.get(key)!.items.push({ s, sec: ph.seconds, workload: ph.workload });
    }
  }
  return [...groups.values()].map(({ system, process, items }) => {
    const sec = items.reduce((a, i) => a + i.sec, 0) || 1;
    const busiest = [...items].sort((a, b) => b.s.cpuPctMean - a.s.cpuPctMean)[0]!;
    const defined = (f: (s: ProcStats) => number | undefined) => items.map((i) => f(i.s)).filter((v): v is number => v !== undefined);
    const p99 = defined((s) => s.loopP99MsMax);
    const mx = defined((s) => s.loopMaxMs);
    const gc = defined((s) => s.gcMs);
    // CPU time of each workload (CPU% mean x its length): weighs its CPU% and its kernel share.
    const cpuSec = items.reduce((a, i) => a + i.s.cpuPctMean * i.sec, 0);
    return {
      ...(p99.length ? { loopP99MsMax: Math.max(...p99) } : {}),
      ...(mx.length ? { loopMaxMs: Math.max(...mx) } : {}),
      ...(gc.length ? { gcMs: round(gc.reduce((a, b) => a + b, 0)) } : {}),
      system,
      process,
      cpuPctMean: round(cpuSec / sec),
      cpuPctMax: round(Math.max(...items.map((i) => i.s.cpuPctMax))),
      sysPct: cpuSec > 0 ? round(items.reduce((a, i) => a + i.s.sysPct * i.s.cpuPctMean * i.sec, 0) / cpuSec) : 0,
      rssMBMean: round(items.reduce((a, i) => a + i.s.rssMBMean * i.sec, 0) / sec),
      rssMBMax: round(Math.max(...items.map((i) => i.s.rssMBMax))),
      busiest: `${busiest.workload} (${round(busiest.s.cpuPctMean, 0)}%)`,
    };
  });
}
