// Turning raw benchmark runs into the side-by-side table (median (min-max) per system, the
// gfs/moosefs ratio with >1 = gfs better, the targets of issue 6), the telemetry and ramp
// summaries, and the JSON document with every raw run.
import type { Metrics } from './fs-bench.js';
import type { DispatchResult } from './client-bench.js';
import type { RampStep } from './ramp.js';
import type { PhaseTelemetry } from './telemetry.js';
import { summarizeTelemetry } from './telemetry.js';
import { median } from './stats.js';

export type SystemName = 'gfs' | 'moosefs';

export interface SystemRun {
  system: SystemName;
  /** Repetition, 1-based. */
  run: number;
  startedAt: string;
  upSeconds: number;
  /** Wall time of the workloads (without bringing the system up and down). */
  seconds: number;
  metrics: Metrics;
  notes: string[];
  testFile?: { sizeMiB: number; writeMBps: number; readMBps: number };
  dispatch?: DispatchResult;
  ramp?: RampStep[];
  error?: string;
}

export interface ReportContext {
  smoke: boolean;
  seqMiB: number;
  smallFiles: number;
  gitFiles: number;
  reads: number;
  clientMiB: number;
}

type Target = { ratio: number } | { atLeast: number } | { atMost: number } | { equals: number | string };

interface MetricDef {
  key: string;
  label: (c: ReportContext) => string;
  unit: string;
  /** Which way is better: decides the direction of the ratio (always >1 = gfs better). */
  better: 'higher' | 'lower' | 'none';
  /** MooseFS on this machine as quoted in issue 6 / shared/bench/README.md. */
  ref?: number;
  target?: Target;
  hidden?: boolean;
  /** Shown in the chart. */
  chart?: boolean;
}

const c = (s: string) => () => s;

/** Every metric the benchmark knows, in table order. */
export const CATALOG: MetricDef[] = [
  { key: 'seq_write_1M', label: (x) => `seq write ${x.seqMiB} MiB, 1 MiB blocks, fsync`, unit: 'MB/s', better: 'higher', ref: 183, target: { ratio: 1 }, chart: true },
  { key: 'seq_read_1M', label: (x) => `seq read ${x.seqMiB} MiB, cold cache`, unit: 'MB/s', better: 'higher', ref: 639, target: { ratio: 1 }, chart: true },
  { key: 'integrity_512M', label: c('  integrity of the 512 MiB file'), unit: '-', better: 'none', target: { equals: 'OK' } },
  { key: 'integrity_seq', label: (x) => `  integrity of the ${x.seqMiB} MiB file`, unit: '-', better: 'none', target: { equals: 'OK' } },
  { key: 'rand_read_4k_4j', label: c('random read 4 KiB, 4 jobs'), unit: 'IOPS', better: 'higher', ref: 30800, target: { ratio: 1 }, chart: true },
  { key: 'par_write_4x128M', label: c('4 parallel writers x 128 MiB'), unit: 'MB/s', better: 'higher', ref: 173, target: { ratio: 1 }, chart: true },
  { key: 'small_create', label: (x) => `tar -x ${x.smallFiles.toLocaleString('en-US')} x 4 KiB`, unit: 'files/s', better: 'higher', ref: 514, target: { ratio: 3 }, chart: true },
  { key: 'small_create_s', label: c('tar -x'), unit: 's', better: 'lower', hidden: true },
  { key: 'small_find_s', label: c('find | wc of the tree, cold'), unit: 's', better: 'lower', target: { ratio: 1 }, chart: true },
  { key: 'small_lsR_s', label: c('ls -lR of the tree, cold'), unit: 's', better: 'lower', ref: 0.5, target: { ratio: 3 }, chart: true },
  { key: 'small_cat_s', label: c('cat of all files, cold'), unit: 's', better: 'lower', ref: 2.16, target: { ratio: 1 }, chart: true },
  { key: 'small_cat', label: c('cat'), unit: 'files/s', better: 'higher', hidden: true },
  { key: 'small_rm_s', label: c('rm -rf of the tree'), unit: 's', better: 'lower', ref: 0.43, target: { ratio: 1 }, chart: true },
  { key: 'small_rm', label: c('rm -rf'), unit: 'files/s', better: 'higher', hidden: true },
  { key: 'integrity_small', label: c('  integrity of the small files'), unit: '-', better: 'none', target: { equals: 'OK' } },
  { key: 'dbench_4p', label: c('dbench, 4 clients'), unit: 'MB/s', better: 'higher', ref: 51.6, target: { ratio: 1 }, chart: true },
  { key: 'dbench_4p_maxlat', label: c('  dbench max latency'), unit: 'ms', better: 'lower' },
  { key: 'git_clone', label: (x) => `git clone --no-hardlinks, ${x.gitFiles.toLocaleString('en-US')} files`, unit: 'files/s', better: 'higher', target: { ratio: 1 }, chart: true },
  { key: 'git_clone_s', label: c('  git clone time'), unit: 's', better: 'lower' },
  { key: 'client_seq_write', label: (x) => `client lib: seq write ${x.clientMiB} MiB`, unit: 'MB/s', better: 'higher' },
  { key: 'client_seq_read', label: (x) => `client lib: seq read ${x.clientMiB} MiB`, unit: 'MB/s', better: 'higher' },
  { key: 'reads_serial', label: (x) => `client lib: ${x.reads.toLocaleString('en-US')} x 4 KiB reads, one at a time`, unit: 'reads/s', better: 'higher' },
  { key: 'reads_serial_mean_ms', label: c('  latency mean'), unit: 'ms', better: 'lower' },
  { key: 'reads_serial_p99_ms', label: c('  latency p99'), unit: 'ms', better: 'lower' },
  { key: 'reads_parallel', label: (x) => `client lib: ${x.reads.toLocaleString('en-US')} x 4 KiB reads, all in flight`, unit: 'reads/s', better: 'higher' },
  { key: 'reads_parallel_mean_ms', label: c('  latency mean'), unit: 'ms', better: 'lower' },
  { key: 'reads_parallel_p99_ms', label: c('  latency p99'), unit: 'ms', better: 'lower' },
  { key: 'reads_first_pass', label: c('  first pass of the process, all in flight (context)'), unit: 'reads/s', better: 'higher' },
  { key: 'reads_first_pass_speedup', label: c('  first pass / one at a time (context)'), unit: 'x', better: 'higher' },
  { key: 'reads_speedup', label: c('  in flight / one at a time'), unit: 'x', better: 'higher', target: { atLeast: 3 } },
  { key: 'reads_added_rss_mb', label: c('  added RSS while in flight (first pass)'), unit: 'MB', better: 'lower', target: { atMost: 120 } },
  { key: 'reads_warm_pass_rss_mb', label: c('  added RSS, measured pass (context)'), unit: 'MB', better: 'lower' },
  { key: 'reads_errors', label: c('  errors'), unit: 'count', better: 'lower', target: { equals: 0 } },
  { key: 'cpu_busy_pct', label: c('machine CPU busy during fsbench (context)'), unit: '%', better: 'none' },
  { key: 'cpu_steal_pct', label: c('machine CPU steal during fsbench (context)'), unit: '%', better: 'none' },
  { key: 'drop_caches', label: c('drop_caches worked'), unit: 'bool', better: 'none', hidden: true },
];

export interface Spread {
  values: Array<number | string>;
  median?: number;
  min?: number;
  max?: number;
}

export interface SummaryRow {
  key: string;
  label: string;
  unit: string;
  better: MetricDef['better'];
  gfs?: Spread;
  moosefs?: Spread;
  /** gfs/moosefs of the medians, inverted for lower-is-better metrics: >1 = gfs better. */
  ratio?: number;
  /** Ratio per repetition (gfs run i against moosefs run i), for the chart's whiskers. */
  ratioRange?: [number, number];
  /** gfs median against the issue's MooseFS figure (when no peer ran in this run). */
  refRatio?: number;
  ref?: number;
  target?: string;
  met?: boolean;
  chart: boolean;
  hidden: boolean;
}

function spread(values: Array<number | string>): Spread {
  const nums = values.filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
  if (nums.length === 0) return { values };
  return { values, median: median(nums), min: Math.min(...nums), max: Math.max(...nums) };
}

function ratioOf(def: MetricDef, g: number | undefined, m: number | undefined): number | undefined {
  if (g === undefined || m === undefined || def.better === 'none') return undefined;
  const r = def.better === 'higher' ? g / m : m / g;
  return Number.isFinite(r) ? r : undefined;
}

function targetText(t: Target | undefined, unit: string): string | undefined {
  if (!t) return undefined;
  if ('ratio' in t) return `>= ${t.ratio.toFixed(1)}x`;
  if ('atLeast' in t) return `>= ${t.atLeast}${unit === 'x' ? 'x' : ` ${unit}`}`;
  if ('atMost' in t) return `< ${t.atMost} ${unit}`;
  return `${t.equals}`;
}

export function summarize(runs: SystemRun[], ctx: ReportContext): SummaryRow[] {
  const rows: SummaryRow[] = [];
  const known = new Set(CATALOG.map((d) => d.key));
  const extra = [...new Set(runs.flatMap((r) => Object.keys(r.metrics)))].filter((k) => !known.has(k));
  const defs: MetricDef[] = [
    ...CATALOG,
    ...extra.map((k): MetricDef => ({ key: k, label: c(k), unit: runs.find((r) => r.metrics[k])!.metrics[k]!.unit, better: 'none' })),
  ];
  for (const def of defs) {
    const per = (s: SystemName) => runs.filter((r) => r.system === s && r.metrics[def.key] !== undefined);
    const g = per('gfs');
    const m = per('moosefs');
    if (g.length === 0 && m.length === 0) continue;
    const row: SummaryRow = {
      key: def.key,
      label: def.label(ctx),
      unit: def.unit,
      better: def.better,
      ref: def.ref,
      target: targetText(def.target, def.unit),
      chart: !!def.chart,
      hidden: !!def.hidden,
    };
    if (g.length) row.gfs = spread(g.map((r) => r.metrics[def.key]!.value));
    if (m.length) row.moosefs = spread(m.map((r) => r.metrics[def.key]!.value));
    row.ratio = ratioOf(def, row.gfs?.median, row.moosefs?.median);
    if (row.ratio !== undefined) {
      const paired: number[] = [];
      for (const gr of g) {
        const mr = m.find((x) => x.run === gr.run);
        const v = ratioOf(def, gr.metrics[def.key]!.value as number, mr?.metrics[def.key]?.value as number | undefined);
        if (v !== undefined) paired.push(v);
      }
      if (paired.length) row.ratioRange = [Math.min(...paired), Math.max(...paired)];
    }
    if (def.ref !== undefined) row.refRatio = ratioOf(def, row.gfs?.median, def.ref);
    const t = def.target;
    if (t && row.gfs) {
      if ('ratio' in t) row.met = row.ratio === undefined ? undefined : row.ratio >= t.ratio;
      else if ('atLeast' in t) row.met = row.gfs.median === undefined ? undefined : row.gfs.median >= t.atLeast;
      else if ('atMost' in t) row.met = row.gfs.max === undefined ? undefined : row.gfs.max < t.atMost;
      else row.met = row.gfs.values.every((v) => v === t.equals);
    }
    rows.push(row);
  }
  return rows;
}

export function fmtNum(v: number | undefined): string {
  if (v === undefined || !Number.isFinite(v)) return 'NaN';
  const a = Math.abs(v);
  const d = a === 0 ? 0 : a < 1 ? 3 : a < 10 ? 2 : a < 100 ? 1 : 0;
  return v.toFixed(d);
}

function fmtSpread(s: Spread | undefined): string {
  if (!s) return '';
  if (s.median === undefined) {
    const strs = s.values.map(String);
    const bad = strs.filter((v) => v !== 'OK').length;
    if (strs.every((v) => v === 'OK')) return strs.length > 1 ? `OK (${strs.length}/${strs.length})` : 'OK';
    return strs.every((v) => v === 'OK' || v === 'FAIL') ? `FAIL (${bad}/${strs.length})` : strs.join(',');
  }
  if (s.values.length === 1) return fmtNum(s.median);
  return `${fmtNum(s.median)} (${fmtNum(s.min)}-${fmtNum(s.max)})`;
}

function table(header: string[], rows: string[][], rightAlign: boolean[]): string {
  const w = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => (rightAlign[i] ? cell.padStart(w[i]!) : cell.padEnd(w[i]!)))
      .join('  ')
      .trimEnd();
  return [line(header), w.map((n) => '-'.repeat(n)).join('  '), ...rows.map(line)].join('\n');
}

export function mainTable(rows: SummaryRow[], peer: boolean): string {
  const header = ['metric', 'unit', 'gfs', ...(peer ? ['moosefs', 'gfs/moosefs'] : []), 'target', 'met', 'MooseFS ref'];
  const body = rows
    .filter((r) => !r.hidden)
    .map((r) => [
      r.label,
      r.unit,
      fmtSpread(r.gfs),
      ...(peer ? [fmtSpread(r.moosefs), r.ratio === undefined ? '' : `${r.ratio.toFixed(2)}x`] : []),
      r.target ?? '',
      r.met === undefined ? '' : r.met ? 'yes' : 'NO',
      r.ref === undefined ? '' : fmtNum(r.ref),
    ]);
  return table(header, body, [false, false, true, ...(peer ? [true, true] : []), false, false, true]);
}

export function rampTable(runs: SystemRun[]): string | undefined {
  const withRamp = runs.filter((r) => r.ramp?.length);
  if (!withRamp.length) return undefined;
  const levels = [...new Set(withRamp.flatMap((r) => r.ramp!.map((s) => s.concurrency)))].sort((a, b) => a - b);
  const body = levels.map((cc) => {
    const steps = withRamp.map((r) => r.ramp!.find((s) => s.concurrency === cc)).filter((s): s is RampStep => !!s);
    const f = (pick: (s: RampStep) => number) => fmtSpread(spread(steps.map(pick)));
    return [String(cc), f((s) => s.readsPerSec), f((s) => s.meanMs), f((s) => s.p99Ms), String(steps.reduce((a, s) => a + s.errors, 0))];
  });
  return table(['in flight', 'reads/s', 'mean ms', 'p99 ms', 'errors'], body, [true, true, true, true, true]);
}

export function telemetryTable(phases: PhaseTelemetry[]): string | undefined {
  const s = summarizeTelemetry(phases);
  if (!s.length) return undefined;
  const opt = (v: number | undefined) => (v === undefined ? '-' : fmtNum(v));
  const body = s.map((r) => [
    r.system,
    r.process,
    fmtNum(r.cpuPctMean),
    fmtNum(r.cpuPctMax),
    fmtNum(r.sysPct),
    fmtNum(r.rssMBMean),
    fmtNum(r.rssMBMax),
    opt(r.loopP99MsMax),
    opt(r.loopMaxMs),
    opt(r.gcMs),
    r.busiest,
  ]);
  return table(
    ['system', 'process', 'CPU% mean', 'CPU% max', 'kernel %', 'RSS MB mean', 'RSS MB max', 'loop p99 ms', 'loop max ms', 'GC ms', 'busiest workload (CPU% mean)'],
    body,
    [false, false, true, true, true, true, true, true, true, true, false],
  );
}

/** MB written to the data disks per workload and system, median (min-max) over repetitions. */
export function diskWritesTable(phases: PhaseTelemetry[]): string | undefined {
  const measured = phases.filter((p) => p.diskWriteMB !== undefined);
  if (!measured.length) return undefined;
  const systems = [...new Set(measured.map((p) => p.system))];
  const workloads = [...new Set(measured.map((p) => p.workload))];
  const body = workloads.map((w) => [
    w,
    ...systems.map((s) => {
      const v = measured.filter((p) => p.workload === w && p.system === s).map((p) => p.diskWriteMB!);
      return v.length ? fmtSpread(spread(v)) : '-';
    }),
  ]);
  return table(['workload', ...systems.map((s) => `${s} MB`)], body, [false, ...systems.map(() => true)]);
}
