// `gfs bench` (= `npm run bench`): brings up its own gfs cluster (`gfs up`, 3 chunkservers,
// goal 3, loopback) and, with --peer moosefs, MooseFS through ../shared/bench/peer-moosefs.sh;
// runs the same file-system workloads on both, alternating the order per repetition so machine
// noise spreads fairly, plus the client-library experiments on gfs; samples CPU%/RSS of every
// daemon; prints the side-by-side table and writes JSON (all raw runs), an SVG chart of the
// ratios and the table into <out>/<timestamp>/. Only one system is up at a time.
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { dispatchExperiment, removeTestFile, writeTestFile, type TestFile } from './client-bench.js';
import { ensureRepo, gitClone, killActiveWorkloads, quickFs, runFsbench, type Metrics, type PhaseHooks } from './fs-bench.js';
import { rampExperiment, rampLevels } from './ramp.js';
import { diskWritesTable, mainTable, rampTable, summarize, telemetryTable, type ReportContext, type SystemName, type SystemRun } from './report.js';
import { ratioChart } from './svg-chart.js';
import type { ClientOptions } from '../client/client.js';
import { startGfs, startMoosefs, type SystemUnderTest } from './systems.js';
import { diskDevicesOf } from './disk-writes.js';
import { ProcSampler, summarizeTelemetry } from './telemetry.js';

export const WORKLOAD_GROUPS = ['fs', 'git', 'client', 'ramp'] as const;
/** Seconds the client-library phase after the repetitions takes at most here (budget planning). */
const CLIENT_PHASE_RESERVE_S = 45;

export interface BenchCliOptions {
  peer?: string;
  runs?: string;
  budgetMin?: string;
  smoke?: boolean;
  out: string;
  reads?: string;
  readBytes?: string;
  clientMib?: string;
  rampMax?: string;
  rampStepMs?: string;
  skip?: string;
}

interface Resolved {
  peer?: 'moosefs';
  runs: number;
  /** Start no further repetition unless it is expected to end within this many minutes of the start (0 = no limit). */
  budgetMin: number;
  smoke: boolean;
  out: string;
  reads: number;
  readBytes: number;
  clientMiB: number;
  rampMax: number;
  rampStepMs: number;
  skip: Set<string>;
  git: { files: number; commits: number };
  quick: { seqMiB: number; smallFiles: number };
}

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

function int(v: string | undefined, dflt: number, name: string, min = 1): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer >= ${min}, got "${v}"`);
  return n;
}

function resolveOptions(o: BenchCliOptions): Resolved {
  const smoke = !!o.smoke;
  if (o.peer !== undefined && o.peer !== 'moosefs') throw new Error(`--peer: only "moosefs" is supported, got "${o.peer}"`);
  const skip = new Set((o.skip ?? '').split(',').map((s) => s.trim()).filter(Boolean));
  for (const s of skip) if (!(WORKLOAD_GROUPS as readonly string[]).includes(s)) throw new Error(`--skip: unknown workload group "${s}" (${WORKLOAD_GROUPS.join(', ')})`);
  return {
    peer: o.peer as 'moosefs' | undefined,
    // 3 repetitions unless told otherwise; without an explicit --runs a time budget keeps a
    // full run with the peer within the 15 minutes issue 6 allows (see --budget-min).
    runs: int(o.runs, smoke ? 1 : 3, 'runs'),
    budgetMin: int(o.budgetMin, o.runs === undefined && !smoke ? 13 : 0, 'budget-min', 0),
    smoke,
    out: o.out,
    reads: int(o.reads, smoke ? 500 : 10_000, 'reads'),
    readBytes: int(o.readBytes, 4096, 'read-bytes'),
    clientMiB: int(o.clientMib, smoke ? 16 : 256, 'client-mib'),
    rampMax: int(o.rampMax, smoke ? 8 : 256, 'ramp-max'),
    rampStepMs: int(o.rampStepMs, smoke ? 300 : 1000, 'ramp-step-ms'),
    skip,
    git: smoke ? { files: 200, commits: 3 } : { files: 3000, commits: 20 },
    quick: { seqMiB: 16, smallFiles: 200 },
  };
}

/** ../shared/bench beside the repository (GFS_SHARED_BENCH overrides). */
export function sharedBenchDir(): string {
  const dir = process.env.GFS_SHARED_BENCH ? resolve(process.env.GFS_SHARED_BENCH) : resolve(REPO_ROOT, '..', 'shared', 'bench');
  if (!existsSync(join(dir, 'fsbench.sh')) || !existsSync(join(dir, 'peer-moosefs.sh'))) {
    throw new Error(
      `the shared benchmark scripts (fsbench.sh, peer-moosefs.sh) are not in ${dir}; ` +
        'they are expected in ../shared/bench beside the repository; set GFS_SHARED_BENCH=/path/to/shared/bench',
    );
  }
  return dir;
}

function requireTools(tools: string[]): void {
  const missing = tools.filter((t) => {
    try {
      execFileSync('bash', ['-c', `command -v ${t}`], { stdio: 'ignore' });
      return false;
    } catch {
      return true;
    }
  });
  if (missing.length) throw new Error(`missing tools: ${missing.join(', ')} (apt-get install ${missing.join(' ')}; scripts/bench.sh installs them when run as root)`);
}

const loadavg = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');

export async function runBench(cli: BenchCliOptions): Promise<void> {
  const o = resolveOptions(cli);
  const t0 = performance.now();
  const startedAt = new Date();
  const elapsed = () => {
    const s = Math.round((performance.now() - t0) / 1000);
    return `${String(Math.floor(s / 60)).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`;
  };
  const log = (m: string) => process.stderr.write(`[${elapsed()}] bench: ${m}\n`);
  const stamp = startedAt.toISOString().replace(/\.\d+Z$/, 'Z').replace(/:/g, '-');
  const outDir = join(resolve(o.out), stamp);

  const needFsbench = !o.smoke && !o.skip.has('fs');
  const shared = needFsbench || o.peer ? sharedBenchDir() : undefined;
  requireTools([...(needFsbench ? ['fio', 'dbench', 'jq', 'awk', 'sha256sum'] : ['dd', 'sha256sum']), 'tar', 'git']);
  if (process.getuid?.() !== 0) log('not root: drop_caches will fail, so "cold cache" reads may be served from the page cache');
  const loadStart = loadavg();
  log(`load average ${loadStart}; ${o.runs} repetition(s)${o.budgetMin ? ` within a ${o.budgetMin} min budget` : ''}; systems: gfs${o.peer ? ', moosefs' : ''}${o.smoke ? ' (smoke sizes)' : ''}`);

  const repo = o.skip.has('git') ? undefined : await ensureRepo(o.git, log);
  const base = mkdtempSync(join(tmpdir(), 'gfs-bench-'));
  const sampler = new ProcSampler(1000);
  const runs: SystemRun[] = [];
  const live = new Set<SystemUnderTest>();
  let aborted = false;

  const onSignal = (sig: NodeJS.Signals) => {
    if (aborted) return;
    aborted = true;
    log(`${sig}: stopping workloads and systems`);
    killActiveWorkloads();
    void Promise.allSettled([...live].map((s) => s.down())).finally(() => {
      rmSync(base, { recursive: true, force: true });
      process.exit(130);
    });
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const systems: SystemName[] = o.peer ? ['gfs', 'moosefs'] : ['gfs'];
  const repSeconds: number[] = [];
  let stoppedByBudget = '';
  try {
    for (let rep = 1; rep <= o.runs && !aborted; rep++) {
      if (rep > 1 && o.budgetMin) {
        const next = Math.max(...repSeconds);
        const used = (performance.now() - t0) / 1000;
        // Room is kept for the client-library phase that follows the repetitions.
        const reserve = !o.skip.has('client') || !o.skip.has('ramp') ? CLIENT_PHASE_RESERVE_S : 0;
        if (used + next + reserve > o.budgetMin * 60) {
          stoppedByBudget = `stopped after ${rep - 1} of ${o.runs} repetitions: one takes ~${Math.round(next / 60)} min here and the budget is ${o.budgetMin} min (--budget-min; or pass --runs explicitly)`;
          log(stoppedByBudget);
          break;
        }
      }
      const repStart = performance.now();
      // Alternate who goes first, so drift in machine load does not favour one system.
      const order = rep % 2 === 1 ? systems : [...systems].reverse();
      for (const name of order) {
        if (aborted) break;
        log(`repetition ${rep}/${o.runs}: ${name}`);
        runs.push(await runSystem(name, rep));
      }
      repSeconds.push((performance.now() - repStart) / 1000);
    }
    const gfsRuns = runs.filter((x) => x.system === 'gfs' && !x.error);
    if (gfsRuns.length && (!o.skip.has('client') || !o.skip.has('ramp')) && !aborted) await clientPhase(gfsRuns);
  } finally {
    sampler.stop();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    rmSync(base, { recursive: true, force: true });
  }

  async function runSystem(name: SystemName, rep: number): Promise<SystemRun> {
    const result: SystemRun = { system: name, run: rep, startedAt: new Date().toISOString(), upSeconds: 0, seconds: 0, metrics: {}, notes: [] };
    const hooks: PhaseHooks = { begin: (w) => sampler.begin(name, rep, w), end: (n) => sampler.end(n) };
    let sys: SystemUnderTest | undefined;
    let gfsDir: string | undefined;
    try {
      // Each system starts afresh every repetition and is stopped after it: a peer left up
      // keeps collecting its garbage in the background (MooseFS used 12-20% of a core for
      // minutes after an rm -rf of 5,000 files), which would tax the other system's run.
      if (name === 'gfs') gfsDir = mkdtempSync(join(base, 'gfs-'));
      sys = gfsDir ? await startGfs(gfsDir, log) : await startMoosefs(join(shared!, 'peer-moosefs.sh'), log);
      live.add(sys);
      result.upSeconds = sys.upSeconds;
      const watched = sys.processes();
      sampler.watchDisks(diskDevicesOf([sys.dataDir]));
      // The client-library experiments run in this process: watch it too.
      sampler.watch(name === 'gfs' ? [...watched, { label: 'bench (client lib)', pid: process.pid }] : watched, sys.metrics);
      if (Object.keys(sys.metrics).length) log(`${name}: scraping /metrics of ${Object.keys(sys.metrics).join(', ')}`);
      const w0 = performance.now();
      const add = (m: Metrics) => Object.assign(result.metrics, m);
      if (!o.skip.has('fs')) {
        if (o.smoke) {
          log(`${name}: quick file-system workloads (${o.quick.seqMiB} MiB dd, ${o.quick.smallFiles} files)`);
          add(await quickFs(sys.mount, o.quick, hooks));
        } else {
          log(`${name}: fsbench.sh on ${sys.mount}`);
          const r = await runFsbench(join(shared!, 'fsbench.sh'), sys.mount, name, hooks, (l) => log(`  ${l}`));
          add(r.metrics);
          result.notes.push(...r.notes);
        }
      }
      if (repo && !aborted) {
        log(`${name}: git clone of ${repo.files} files`);
        const m = await gitClone(repo, sys.mount, hooks);
        log(`  ${name} git_clone ${m.git_clone!.value} files/s (${m.git_clone_s!.value} s)`);
        add(m);
      }
      result.seconds = (performance.now() - w0) / 1000;
    } catch (err) {
      result.error = err instanceof Error ? err.message : String(err);
      log(`${name} repetition ${rep} FAILED: ${result.error}`);
    } finally {
      sampler.end();
      sampler.unwatch();
      if (sys) {
        try {
          await sys.down();
          log(`${name} down`);
        } catch (err) {
          const msg = err instanceof Error ? err.message : String(err);
          result.error = result.error ? `${result.error}; ${msg}` : msg;
          log(`${name}: stopping failed: ${msg}`);
        }
        live.delete(sys);
      }
      if (gfsDir) keepLogsOfFailure(result, join(gfsDir, 'data', 'logs'));
    }
    return result;
  }

  /** A gfs repetition that failed, or lost a workload, keeps its cluster's logs beside the results. */
  function keepLogsOfFailure(result: SystemRun, logs: string): void {
    const lost = Object.entries(result.metrics).filter(([, m]) => typeof m.value === 'number' && Number.isNaN(m.value)).map(([k]) => k);
    if (!result.error && lost.length === 0) return;
    const dest = join(outDir, 'logs', `gfs-rep${result.run}`);
    try {
      mkdirSync(dest, { recursive: true });
      cpSync(logs, dest, { recursive: true });
      result.notes.push(`failed${lost.length ? ` (${lost.join(', ')})` : ''}: the cluster's logs are in ${dest}`);
      log(`gfs repetition ${result.run}: logs kept in ${dest}`);
    } catch (err) {
      log(`gfs repetition ${result.run}: keeping its logs failed: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  /**
   * The client-library experiments, on a gfs cluster of their own after the file-system
   * repetitions: one dispatch pass per repetition (its results go with that repetition's gfs
   * run, so the table's medians cover them) and one ramp. Run once rather than in every
   * repetition, they cost a third of the time, which is what lets three repetitions fit.
   */
  async function clientPhase(gfsRuns: SystemRun[]): Promise<void> {
    const rep = gfsRuns[gfsRuns.length - 1]!.run;
    const hooks: PhaseHooks = { begin: (w) => sampler.begin('gfs', rep, w), end: (n) => sampler.end(n) };
    let sys: SystemUnderTest | undefined;
    try {
      sys = await startGfs(mkdtempSync(join(base, 'gfs-client-')), log);
      live.add(sys);
      sampler.watchDisks(diskDevicesOf([sys.dataDir]));
      sampler.watch([...sys.processes(), { label: 'bench (client lib)', pid: process.pid }], sys.metrics);
      const conn = sys.client!;
      hooks.begin('client write+read');
      log(`gfs: client library: write and read back ${o.clientMiB} MiB`);
      const f: TestFile = await writeTestFile(conn, '/bench-client.bin', o.clientMiB);
      hooks.end();
      try {
        for (const [i, result] of gfsRuns.entries()) {
          if (aborted) break;
          const m = result.metrics;
          result.testFile = { sizeMiB: o.clientMiB, writeMBps: f.writeMBps, readMBps: f.readMBps };
          if (i === 0) {
            m.client_seq_write = { value: r(f.writeMBps, 1), unit: 'MB/s' };
            m.client_seq_read = { value: r(f.readMBps, 1), unit: 'MB/s' };
          }
          if (o.skip.has('client')) continue;
          log(`gfs: client library: pass ${i + 1}/${gfsRuns.length}: ${o.reads} reads one at a time, then all in flight`);
          hooks.begin(`${o.reads} reads`);
          const d = await dispatchExperiment(conn, f, o.reads, o.readBytes);
          hooks.end();
          result.dispatch = d;
          Object.assign(m, {
            reads_serial: { value: r(d.serial.opsPerSec, 0), unit: 'reads/s' },
            reads_serial_mean_ms: { value: r(d.serial.meanMs, 3), unit: 'ms' },
            reads_serial_p99_ms: { value: r(d.serial.p99Ms, 3), unit: 'ms' },
            reads_parallel: { value: r(d.parallel.opsPerSec, 0), unit: 'reads/s' },
            reads_parallel_mean_ms: { value: r(d.parallel.meanMs, 1), unit: 'ms' },
            reads_parallel_p99_ms: { value: r(d.parallel.p99Ms, 1), unit: 'ms' },
            reads_speedup: { value: r(d.parallel.opsPerSec / d.serial.opsPerSec, 2), unit: 'x' },
            reads_first_pass: { value: r(d.firstPass.opsPerSec, 0), unit: 'reads/s' },
            reads_first_pass_speedup: { value: r(d.firstPass.opsPerSec / d.serial.opsPerSec, 2), unit: 'x' },
            // Memory is judged on the first pass: the growth a process pays to hold the reads at
            // all (a warm pass may fit in the heap the first one grew, and add nothing).
            reads_added_rss_mb: { value: r(d.firstPass.addedRssMB, 1), unit: 'MB' },
            reads_warm_pass_rss_mb: { value: r(d.parallel.addedRssMB, 1), unit: 'MB' },
            reads_errors: { value: d.firstPass.errors + d.parallel.errors + d.serial.errors, unit: 'count' },
          } satisfies Metrics);
          log(`  gfs reads: ${m.reads_serial!.value}/s one at a time, ${m.reads_parallel!.value}/s in flight (first pass ${m.reads_first_pass!.value}/s), +${m.reads_added_rss_mb!.value} MB RSS, ${m.reads_errors!.value} errors`);
        }
        if (!o.skip.has('ramp') && !aborted) {
          const levels = rampLevels(o.rampMax);
          log(`gfs: client library: concurrency ramp ${levels.join(',')} (${o.rampStepMs} ms each)`);
          hooks.begin('ramp');
          gfsRuns[0]!.ramp = await rampExperiment(conn, f, levels, o.rampStepMs, o.readBytes);
          hooks.end();
        }
      } finally {
        hooks.end();
        await removeTestFile(conn, f).catch(() => undefined);
      }
    } catch (err) {
      const msg = err instanceof Error ? err.message : String(err);
      log(`gfs client library experiments FAILED: ${msg}`);
      for (const x of gfsRuns) x.error ??= `client library experiments: ${msg}`;
    } finally {
      sampler.end();
      sampler.unwatch();
      if (sys) {
        await sys.down().catch((err) => log(`gfs: stopping failed: ${err instanceof Error ? err.message : String(err)}`));
        live.delete(sys);
      }
    }
  }

  // ------------------------------------------------------------------ report
  const seconds = (performance.now() - t0) / 1000;
  const ctx: ReportContext = {
    smoke: o.smoke,
    seqMiB: o.smoke ? o.quick.seqMiB : 512,
    smallFiles: o.smoke ? o.quick.smallFiles : 5000,
    gitFiles: repo?.files ?? 0,
    reads: o.reads,
    clientMiB: o.clientMiB,
  };
  const rows = summarize(runs, ctx);
  await sampler.flush();
  const telemetry = sampler.report();
  const peer = !!o.peer && runs.some((x) => x.system === 'moosefs' && !x.error);
  const reps = new Set(runs.map((x) => x.run)).size;
  const lines: string[] = [];
  lines.push(
    `gfs benchmark: 3 chunkservers, goal 3, loopback${o.smoke ? ' (SMOKE sizes: not comparable with the targets)' : ''}`,
    `${reps} repetition(s)${peer ? ', gfs and moosefs alternating first, each started afresh and stopped after its run' : ''}; values are median (min-max) over repetitions`,
  );
  if (peer) lines.push('gfs/moosefs: ratio of medians, >1 means gfs is better (time metrics inverted: moosefs s / gfs s)');
  lines.push(
    'target: issue 6 (every workload >= 1.0x MooseFS in the same run; tar -x and ls -lR >= 3x); met: judged on medians',
    'MooseFS ref: MooseFS measured on this machine earlier (issue 6, shared/bench/README.md): for orientation only',
    `host ${hostname()}, ${execFileSync('nproc', { encoding: 'utf8' }).trim()} cores; load average ${loadStart} at start, ${loadavg()} at end; took ${Math.round(seconds)} s`,
  );
  if (stoppedByBudget) lines.push(`NOTE: ${stoppedByBudget}`);
  lines.push('', mainTable(rows, peer));
  const ramp = rampTable(runs);
  if (ramp) lines.push('', `client-library concurrency ramp on gfs (${o.readBytes / 1024} KiB random reads, ${o.rampStepMs} ms per step; median (min-max)):`, ramp);
  const tel = telemetryTable(telemetry);
  if (tel) lines.push('', 'process telemetry (CPU/RSS from /proc, loop/GC from gfs /metrics; every 1 s and at workload boundaries; whole run; per workload and in-flight/queue gauges in the JSON):', tel);
  const disk = diskWritesTable(telemetry);
  if (disk) {
    lines.push(
      '',
      'MB written to the disk under each system\'s data directory during each workload (by any process; median (min-max)).',
      'A workload\'s fsync is on disk inside its time only where its chunkservers sync; data left dirty is written during a later workload (the sync before its drop_caches):',
      disk,
    );
  }
  const failed = runs.filter((x) => x.error);
  if (failed.length) lines.push('', ...failed.map((x) => `FAILED: ${x.system} repetition ${x.run}: ${x.error}`));
  const tableText = lines.join('\n') + '\n';

  mkdirSync(outDir, { recursive: true });
  const jsonPath = join(outDir, 'results.json');
  const svgPath = join(outDir, 'ratios.svg');
  const tablePath = join(outDir, 'table.txt');
  writeFileSync(
    jsonPath,
    JSON.stringify(
      {
        version: 1,
        startedAt: startedAt.toISOString(),
        finishedAt: new Date().toISOString(),
        seconds: r(seconds, 1),
        options: { ...o, skip: [...o.skip] },
        host: { hostname: hostname(), nproc: Number(execFileSync('nproc', { encoding: 'utf8' })), memTotalMB: Math.round(totalmem() / 1e6), loadavgStart: loadStart, loadavgEnd: loadavg() },
        stoppedByBudget: stoppedByBudget || undefined,
        summary: rows,
        runs,
        telemetry,
        telemetrySummary: summarizeTelemetry(telemetry),
      },
      null,
      2,
    ),
  );
  const chartRows = rows.filter((x) => x.chart && (peer ? x.ratio !== undefined : x.refRatio !== undefined));
  const targetOf = (key: string) => (key === 'small_create' || key === 'small_lsR_s' ? 3 : 1);
  writeFileSync(
    svgPath,
    ratioChart(
      chartRows.map((x) => ({ label: x.label, ratio: (peer ? x.ratio : x.refRatio)!, range: peer ? x.ratioRange : undefined, target: targetOf(x.key) })),
      peer ? 'gfs vs MooseFS, same machine, same run' : 'gfs vs MooseFS reference figures (issue 6; MooseFS not run here)',
      `${reps} repetition(s), median ratio${peer ? ', whiskers: per-repetition min-max' : ''}; ${stamp}${o.smoke ? '; SMOKE sizes, not comparable' : ''}`,
    ),
  );
  writeFileSync(tablePath, tableText);
  process.stdout.write(`\n${tableText}\nJSON:  ${jsonPath}\nchart: ${svgPath}\ntable: ${tablePath}\n`);
  if (failed.length) throw new Error(`${failed.length} system run(s) failed (see above)`);
}

const r = (v: number, d: number) => Number(v.toFixed(d));
