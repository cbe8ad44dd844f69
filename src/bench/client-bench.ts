// `gfs bench`: brings up its own cluster (master + 3 chunkservers as child processes on
// loopback, goal 3), then measures the client library: sequential write and read of a large
// file, and the dispatch experiment (N small reads in flight at once vs the same reads one at a
// time). Prints a table and writes JSON. Figures are medians over --runs with min-max spread.
import { randomBytes, createHash } from 'node:crypto';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { GfsClient } from '../client/client.js';
import { LISTENING_RE } from '../cli/ready-line.js';
import { startChild, stopChild, type Child } from '../cli/child-process.js';
import { median, RssSampler, summarize } from './stats.js';

const MiB = 1024 * 1024;

export interface BenchOptions {
  sizeMiB: number;
  reads: number;
  readBytes: number;
  runs: number;
  out: string;
}

interface RunResult {
  writeMBps: number;
  readMBps: number;
  serial: { opsPerSec: number; meanMs: number; p99Ms: number };
  parallel: { opsPerSec: number; meanMs: number; p99Ms: number; addedRssMB: number; errors: number };
}

async function startCluster(dir: string): Promise<{ children: Child[]; master: string }> {
  const children: Child[] = [];
  const master = await startChild('master', ['master', '--data', join(dir, 'master'), '--log-file', join(dir, 'master.log')], LISTENING_RE, join(dir, 'master.stderr'));
  children.push(master);
  for (let i = 1; i <= 3; i++) {
    children.push(
      await startChild(
        `cs${i}`,
        ['chunkserver', '--data', join(dir, `cs${i}`), '--master', master.ready, '--log-file', join(dir, `cs${i}.log`)],
        LISTENING_RE,
        join(dir, `cs${i}.stderr`),
      ),
    );
  }
  return { children, master: master.ready };
}

async function waitLive(client: GfsClient, n: number): Promise<void> {
  const end = Date.now() + 30_000;
  while (Date.now() < end) {
    const s = await client.clusterStatus();
    if (s.servers.filter((v) => v.state === 'alive').length >= n) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error('chunkservers did not come up');
}

async function oneRun(master: string, o: BenchOptions, run: number): Promise<RunResult> {
  const client = new GfsClient({ master });
  const size = o.sizeMiB * MiB;
  const data = randomBytes(size);
  const attr = await client.create(`/bench-${run}.bin`, 0o100644);

  let t = performance.now();
  // 8 MiB application writes, as a copy tool would issue, 4 in flight.
  const piece = 8 * MiB;
  for (let off = 0; off < size; off += piece * 4) {
    const batch = [];
    for (let k = 0; k < 4 && off + k * piece < size; k++) {
      const s = off + k * piece;
      batch.push(client.writeData(attr.ino, s, data.subarray(s, Math.min(size, s + piece))));
    }
    await Promise.all(batch);
  }
  await client.commitWrite(attr.ino, size);
  const writeMBps = size / 1e6 / ((performance.now() - t) / 1000);

  const reader = new GfsClient({ master });
  t = performance.now();
  const back = await reader.read(attr.ino, 0, size);
  const readMBps = size / 1e6 / ((performance.now() - t) / 1000);
  if (createHash('sha256').update(back).digest('hex') !== createHash('sha256').update(data).digest('hex')) {
    throw new Error('benchmark read back different bytes');
  }

  // Dispatch experiment: the same random 4 KiB offsets, one at a time, then all at once.
  const offsets = Array.from({ length: o.reads }, () => Math.floor(Math.random() * ((size - o.readBytes) / 4096)) * 4096);
  await reader.read(attr.ino, 0, o.readBytes); // warm locations and connections
  const serialLat: number[] = [];
  t = performance.now();
  for (const off of offsets) {
    const s = performance.now();
    await reader.read(attr.ino, off, o.readBytes);
    serialLat.push(performance.now() - s);
  }
  const serialSec = (performance.now() - t) / 1000;

  globalThis.gc?.();
  const rss = new RssSampler();
  const baseRss = process.memoryUsage.rss();
  rss.start();
  const parLat: number[] = [];
  let errors = 0;
  t = performance.now();
  await Promise.all(
    offsets.map(async (off) => {
      const s = performance.now();
      try {
        const b = await reader.read(attr.ino, off, o.readBytes);
        if (b.length !== o.readBytes) errors++;
      } catch {
        errors++;
      }
      parLat.push(performance.now() - s);
    }),
  );
  const parSec = (performance.now() - t) / 1000;
  const peak = rss.stop();

  await client.unlink(`/bench-${run}.bin`);
  await client.close();
  await reader.close();
  const sl = summarize(serialLat);
  const pl = summarize(parLat);
  return {
    writeMBps,
    readMBps,
    serial: { opsPerSec: o.reads / serialSec, meanMs: sl.mean, p99Ms: sl.p99 },
    parallel: { opsPerSec: o.reads / parSec, meanMs: pl.mean, p99Ms: pl.p99, addedRssMB: (peak - baseRss) / 1e6, errors },
  };
}

const fmt = (vals: number[], digits = 1) => {
  const s = [...vals].sort((a, b) => a - b);
  return `${median(vals).toFixed(digits)} (${s[0]!.toFixed(digits)}-${s[s.length - 1]!.toFixed(digits)})`;
};

export async function runClientBench(o: BenchOptions): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'gfs-bench-'));
  const { children, master } = await startCluster(dir);
  try {
    const probe = new GfsClient({ master });
    await waitLive(probe, 3);
    await probe.close();
    const results: RunResult[] = [];
    for (let r = 0; r < o.runs; r++) {
      results.push(await oneRun(master, o, r));
      process.stderr.write(`bench: run ${r + 1}/${o.runs} done\n`);
    }
    const col = (f: (r: RunResult) => number, d = 1) => fmt(results.map(f), d);
    const rows: Array<[string, string]> = [
      [`client sequential write ${o.sizeMiB} MiB (MB/s)`, col((r) => r.writeMBps)],
      [`client sequential read ${o.sizeMiB} MiB (MB/s)`, col((r) => r.readMBps)],
      [`${o.reads} x ${o.readBytes / 1024} KiB reads, serial (reads/s)`, col((r) => r.serial.opsPerSec, 0)],
      ['  serial latency mean / p99 (ms)', `${col((r) => r.serial.meanMs, 2)} / ${col((r) => r.serial.p99Ms, 2)}`],
      [`${o.reads} x ${o.readBytes / 1024} KiB reads, all in flight (reads/s)`, col((r) => r.parallel.opsPerSec, 0)],
      ['  parallel latency mean / p99 (ms)', `${col((r) => r.parallel.meanMs)} / ${col((r) => r.parallel.p99Ms)}`],
      ['  parallel / serial throughput', col((r) => r.parallel.opsPerSec / r.serial.opsPerSec, 2)],
      ['  added RSS while in flight (MB)', col((r) => r.parallel.addedRssMB)],
      ['  errors', String(results.reduce((a, r) => a + r.parallel.errors, 0))],
    ];
    const w = Math.max(...rows.map((r) => r[0].length));
    process.stdout.write(`\ngfs client benchmark: 3 chunkservers, 3 replicas, loopback; median (min-max) of ${o.runs} runs\n`);
    for (const [k, v] of rows) process.stdout.write(`${k.padEnd(w)}  ${v}\n`);
    const out = resolve(o.out);
    mkdirSync(out, { recursive: true });
    const file = join(out, `client-bench-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
    writeFileSync(file, JSON.stringify({ options: o, results }, null, 2));
    process.stdout.write(`\nJSON: ${file}\n`);
  } finally {
    for (const c of children.reverse()) await stopChild(c);
    rmSync(dir, { recursive: true, force: true });
  }
}
