// `gfs bench-meta`: metadata operations per second through the client library. Starts its own
// master (a child process with a fresh data dir, so every mutation goes through the operation
// log and its fsyncs), then creates, stats and unlinks N empty files with `concurrency`
// operations in flight. Run it with --sync-mode group and each to see what group commit buys.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { GfsClient } from '../client/client.js';
import { LISTENING_RE } from '../cli/ready-line.js';
import { startChild, stopChild } from '../cli/child-process.js';
import { summarize } from './stats.js';

export interface MetaBenchOptions {
  files: number;
  syncMode: 'group' | 'each';
  /** Operations in flight; default 64. */
  concurrency?: number;
  /** Where the master's data dir goes (a temp dir under it, removed afterwards). */
  baseDir?: string;
}

export interface PhaseResult {
  ops: number;
  seconds: number;
  opsPerSec: number;
  p50Ms: number;
  p99Ms: number;
}

export interface MetaBenchResult {
  files: number;
  syncMode: 'group' | 'each';
  concurrency: number;
  create: PhaseResult;
  stat: PhaseResult;
  unlink: PhaseResult;
  /** From the master's log at shutdown: records logged and fsyncs issued. */
  logRecords?: number;
  logSyncs?: number;
}

async function phase(n: number, concurrency: number, op: (i: number) => Promise<unknown>): Promise<PhaseResult> {
  const lat: number[] = new Array(n);
  let next = 0;
  const t0 = performance.now();
  const worker = async () => {
    for (let i = next++; i < n; i = next++) {
      const s = performance.now();
      await op(i);
      lat[i] = performance.now() - s;
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker));
  const seconds = (performance.now() - t0) / 1000;
  const s = summarize(lat);
  return { ops: n, seconds, opsPerSec: n / seconds, p50Ms: s.p50, p99Ms: s.p99 };
}

export async function runMetaBench(o: MetaBenchOptions): Promise<MetaBenchResult> {
  const files = o.files;
  const concurrency = o.concurrency ?? 64;
  if (!Number.isSafeInteger(files) || files < 1) throw new Error(`files must be a positive integer, got ${files}`);
  const dir = mkdtempSync(join(o.baseDir ?? tmpdir(), 'gfs-meta-bench-'));
  const logFile = join(dir, 'master.log');
  const master = await startChild(
    'master',
    ['master', '--data', join(dir, 'master'), '--sync-mode', o.syncMode, '--log-file', logFile, '--log-level', 'info'],
    LISTENING_RE,
    join(dir, 'master.stderr'),
  );
  const client = new GfsClient({ master: master.ready, secretFile: join(dir, 'master', 'client.key') });
  try {
    const perDir = 1000;
    const dirs = Math.ceil(files / perDir);
    for (let d = 0; d < dirs; d++) await client.mkdir(`/d${d}`, 0o755);
    const path = (i: number) => `/d${Math.floor(i / perDir)}/f${i}`;
    const create = await phase(files, concurrency, (i) => client.create(path(i), 0o100644, undefined, { exclusive: true }));
    const stat = await phase(files, concurrency, (i) => client.getattr(path(i)));
    const unlink = await phase(files, concurrency, (i) => client.unlink(path(i)));
    await client.close();
    await stopChild(master);
    const result: MetaBenchResult = { files, syncMode: o.syncMode, concurrency, create, stat, unlink };
    // The master logs its operation-log counters when it closes.
    for (const line of readFileSync(logFile, 'utf8').split('\n')) {
      if (!line.includes('operation log closed')) continue;
      const j = JSON.parse(line) as { records?: number; syncs?: number };
      result.logRecords = j.records;
      result.logSyncs = j.syncs;
    }
    return result;
  } finally {
    await client.close();
    await stopChild(master);
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface MetaBenchCliOptions {
  files: number;
  concurrency: number;
  syncMode: 'group' | 'each' | 'both';
  out: string;
}

export async function runMetaBenchCli(o: MetaBenchCliOptions): Promise<void> {
  const modes: Array<'group' | 'each'> = o.syncMode === 'both' ? ['group', 'each'] : [o.syncMode];
  const results: MetaBenchResult[] = [];
  for (const syncMode of modes) {
    process.stdout.write(`gfs bench-meta: ${o.files} files, ${o.concurrency} in flight, sync mode ${syncMode} ...\n`);
    results.push(await runMetaBench({ files: o.files, concurrency: o.concurrency, syncMode }));
  }
  const row = (r: MetaBenchResult, k: 'create' | 'stat' | 'unlink') =>
    `${r.syncMode.padEnd(6)} ${k.padEnd(7)} ${r[k].opsPerSec.toFixed(0).padStart(9)} ops/s   p50 ${r[k].p50Ms.toFixed(2).padStart(7)} ms   p99 ${r[k].p99Ms.toFixed(2).padStart(7)} ms`;
  const lines = ['mode   op        throughput   latency'];
  for (const r of results) {
    for (const k of ['create', 'stat', 'unlink'] as const) lines.push(row(r, k));
    if (r.logSyncs !== undefined) lines.push(`${r.syncMode.padEnd(6)} log: ${r.logRecords} records, ${r.logSyncs} fsyncs (${((r.logRecords ?? 0) / Math.max(1, r.logSyncs)).toFixed(1)} records per fsync)`);
  }
  process.stdout.write(lines.join('\n') + '\n');
  const out = resolve(o.out);
  mkdirSync(out, { recursive: true });
  const file = join(out, `meta-bench-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify({ when: new Date().toISOString(), results }, null, 2) + '\n');
  process.stdout.write(`gfs bench-meta: results written to ${file}\n`);
}
