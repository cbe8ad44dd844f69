// Metrics overhead and daemon memory, measured in one run:
//   node dist/bench/metrics-overhead.js [--reads N] [--rounds R] [--mib M] [--mount]
// Two local clusters run side by side (master + 3 chunkservers each): one with metrics, one
// started with --no-metrics. The small-read dispatch experiment (N random 4 KiB reads through
// the client library, one at a time, then all in flight) runs against each in alternation,
// R rounds, with the client's own per-request metrics on and off to match. Then the RSS of
// every daemon: idle, and its peak under a workload (a 256 MiB sequential write + read and the
// reads above; with --mount, also through a FUSE mount with --metrics-port).
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { promisify } from 'node:util';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { GfsClient } from '../client/client.js';
import { countBytes, initProcessMetrics, serverRpcStarted, setMetricsEnabled } from '../common/metrics.js';
import { OpStats } from '../common/op-stats.js';
import { startChild, stopChild, type Child } from '../cli/child-process.js';
import { LISTENING_RE, MOUNTED_RE } from '../cli/ready-line.js';

const MiB = 1024 * 1024;
const run = promisify(execFile);

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
}

function rss(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** The credential the master generated in its data directory (cluster security). */
const secretOf = (dir: string) => join(dir, 'm', 'cluster.secret');
const clients = new Map<string, string>();

interface Cluster {
  name: string;
  master: Child;
  servers: Child[];
  dir: string;
}

async function startCluster(name: string, extra: string[]): Promise<Cluster> {
  const dir = mkdtempSync(join(tmpdir(), `gfs-mo-${name}-`));
  const master = await startChild(`${name}-master`, ['master', '--data', join(dir, 'm'), '--log-level', 'warn', ...extra], LISTENING_RE, join(dir, 'master.stderr'));
  const servers: Child[] = [];
  try {
    await startServers(name, dir, master, servers, extra);
  } catch (err) {
    for (const c of [...servers, master]) await stopChild(c);
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const c = new GfsClient({ master: master.ready, secretFile: secretOf(dir) });
  try {
    for (let t = 0; t < 100; t++) {
      if ((await c.clusterStatus()).servers.filter((s) => s.state === 'alive').length === 3) break;
      await new Promise((r) => setTimeout(r, 200));
    }
  } finally {
    await c.close();
  }
  clients.set(master.ready, secretOf(dir));
  return { name, master, servers, dir };
}

async function startServers(name: string, dir: string, master: Child, servers: Child[], extra: string[]): Promise<void> {
  for (let i = 1; i <= 3; i++) {
    servers.push(
      await startChild(
        `${name}-cs${i}`,
        ['chunkserver', '--data', join(dir, `cs${i}`), '--master', master.ready, '--log-level', 'warn', '--secret-file', secretOf(dir), ...extra],
        LISTENING_RE,
        join(dir, `cs${i}.stderr`),
      ),
    );
  }
}

async function writeFile(master: string, path: string, mib: number): Promise<{ ino: number; size: number }> {
  const c = new GfsClient({ master, secretFile: clients.get(master) });
  try {
    const size = mib * MiB;
    const attr = await c.create(path, 0o100644);
    for (let off = 0; off < size; off += 8 * MiB) await c.write(attr.ino, off, randomBytes(Math.min(8 * MiB, size - off)));
    await c.read(attr.ino, 0, size);
    return { ino: attr.ino, size };
  } finally {
    await c.close();
  }
}

async function smallReads(master: string, f: { ino: number; size: number }, n: number) {
  const c = new GfsClient({ master, secretFile: clients.get(master) });
  try {
    const offs = Array.from({ length: n }, () => Math.floor(Math.random() * ((f.size - 4096) / 4096)) * 4096);
    await c.read(f.ino, 0, 4096);
    let t = performance.now();
    for (const o of offs) await c.read(f.ino, o, 4096);
    const serial = n / ((performance.now() - t) / 1000);
    t = performance.now();
    await Promise.all(offs.map((o) => c.read(f.ino, o, 4096)));
    const parallel = n / ((performance.now() - t) / 1000);
    return { serial, parallel };
  } finally {
    await c.close();
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/**
 * CPU cost of the metrics done per request, in ns per call, with metrics on and off: a served
 * RPC (count, in-flight gauge, histogram), a byte counter, an OpStats record (client RPC / FUSE
 * op histogram). Independent of machine load, unlike the IOPS comparison.
 */
function perCallNs(): Record<string, { on: number; off: number }> {
  const n = 1_000_000;
  const stats = new OpStats();
  const cases: Record<string, () => void> = {
    servedRpc: () => serverRpcStarted('Bench')(false),
    bytes: () => countBytes('bench', 4096),
    opStatsRecord: () => stats.record('chunk.ReadSmall', 0.5),
  };
  const out: Record<string, { on: number; off: number }> = {};
  for (const [name, fn] of Object.entries(cases)) {
    const r = { on: 0, off: 0 };
    for (const mode of ['on', 'off', 'on', 'off'] as const) {
      setMetricsEnabled(mode === 'on');
      for (let i = 0; i < 10_000; i++) fn();
      const t = process.hrtime.bigint();
      for (let i = 0; i < n; i++) fn();
      r[mode] = Math.round(Number(process.hrtime.bigint() - t) / n);
    }
    out[name] = r;
  }
  setMetricsEnabled(true);
  return out;
}

async function main(): Promise<void> {
  const reads = arg('reads', 5000);
  const rounds = arg('rounds', 5);
  const mib = arg('mib', 64);
  initProcessMetrics('bench');
  const micro = perCallNs();
  process.stderr.write(`per call (ns): ${JSON.stringify(micro)}\n`);
  if (process.argv.includes('--micro-only')) {
    process.stdout.write(JSON.stringify({ perCallNs: micro }, null, 2) + '\n');
    return;
  }
  const on = await startCluster('on', []);
  const off = await startCluster('off', ['--no-metrics']);
  const daemons = (c: Cluster) => [c.master, ...c.servers];
  const idle: Record<string, number> = {};
  await new Promise((r) => setTimeout(r, 2000));
  for (const d of [...daemons(on), ...daemons(off)]) idle[d.name] = rss(d.proc.pid!);

  const peak: Record<string, number> = {};
  const sampler = setInterval(() => {
    for (const d of [...daemons(on), ...daemons(off)]) peak[d.name] = Math.max(peak[d.name] ?? 0, rss(d.proc.pid!));
  }, 100);
  const results: Record<'on' | 'off', { serial: number[]; parallel: number[] }> = { on: { serial: [], parallel: [] }, off: { serial: [], parallel: [] } };
  try {
    const files = { on: await writeFile(on.master.ready, '/f', mib), off: await writeFile(off.master.ready, '/f', mib) };
    const big = { on: await writeFile(on.master.ready, '/big', 256), off: await writeFile(off.master.ready, '/big', 256) };
    void big;
    for (let r = 0; r < rounds; r++) {
      const order: Array<'on' | 'off'> = r % 2 === 0 ? ['on', 'off'] : ['off', 'on'];
      for (const which of order) {
        setMetricsEnabled(which === 'on');
        const res = await smallReads((which === 'on' ? on : off).master.ready, files[which], reads);
        results[which].serial.push(res.serial);
        results[which].parallel.push(res.parallel);
        process.stderr.write(`round ${r + 1} metrics ${which}: serial ${res.serial.toFixed(0)} reads/s, parallel ${res.parallel.toFixed(0)} reads/s\n`);
      }
    }
    setMetricsEnabled(true);

    let mount: { idle: number; peak: number } | undefined;
    if (process.argv.includes('--mount')) mount = await mountRss(on);
    clearInterval(sampler);
    const mb = (n: number) => Math.round(n / 1e6);
    const summary = {
      perCallNs: micro,
      loadAverage: (await import('node:os')).loadavg(),
      reads,
      rounds,
      smallReadIops: {
        metricsOn: { serialMedian: Math.round(median(results.on.serial)), parallelMedian: Math.round(median(results.on.parallel)) },
        metricsOff: { serialMedian: Math.round(median(results.off.serial)), parallelMedian: Math.round(median(results.off.parallel)) },
        overheadPct: {
          serial: Math.round((1 - median(results.on.serial) / median(results.off.serial)) * 1000) / 10,
          parallel: Math.round((1 - median(results.on.parallel) / median(results.off.parallel)) * 1000) / 10,
        },
        raw: results,
      },
      rssMB: Object.fromEntries(Object.keys(idle).map((k) => [k, { idle: mb(idle[k]!), peakUnderLoad: mb(peak[k] ?? 0) }])),
      mountRssMB: mount ? { idle: mb(mount.idle), peakUnderLoad: mb(mount.peak) } : undefined,
    };
    process.stdout.write(JSON.stringify(summary, null, 2) + '\n');
  } finally {
    clearInterval(sampler);
    for (const c of [on, off]) {
      for (const d of [...c.servers].reverse()) await stopChild(d);
      await stopChild(c.master);
      rmSync(c.dir, { recursive: true, force: true });
    }
  }
}

/** RSS of a `gfs mount --metrics-port 0` idle and under dd write + read of 256 MiB. */
async function mountRss(c: Cluster): Promise<{ idle: number; peak: number }> {
  const mnt = join(c.dir, 'mnt');
  const m = await startChild('mount', ['mount', '--master', c.master.ready, mnt, '--metrics-port', '0', '--log-level', 'warn', '--secret-file', secretOf(c.dir)], MOUNTED_RE, join(c.dir, 'mount.stderr'));
  try {
    await new Promise((r) => setTimeout(r, 1500));
    const idle = rss(m.proc.pid!);
    let peak = idle;
    const s = setInterval(() => (peak = Math.max(peak, rss(m.proc.pid!))), 100);
    // Asynchronously: the RSS sampler runs on this event loop.
    await run('dd', ['if=/dev/urandom', `of=${join(mnt, 'dd.bin')}`, 'bs=1M', 'count=256', 'conv=fsync']);
    await run('sh', ['-c', `echo 3 > /proc/sys/vm/drop_caches; cat ${join(mnt, 'dd.bin')} > /dev/null`]);
    clearInterval(s);
    return { idle, peak };
  } finally {
    await stopChild(m);
  }
}

main().catch((err) => {
  process.stderr.write(`metrics-overhead: ${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
