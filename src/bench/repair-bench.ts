// `gfs bench-repair`: the self-healing benchmark. Brings up a master and N chunkservers on
// loopback (goal 3), fills the cluster with --size-mib of data through the client library,
// measures client write throughput with no repair running, SIGKILLs one chunkserver, and then
// measures (1) the time from the SIGKILL (and from the master declaring it dead) until every
// chunk is back at 3 live replicas, with the repair throughput beside the clone bandwidth
// bound, and (2) client write throughput while the repair runs (same run, same cluster).
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { GfsClient } from '../client/client.js';
import { LISTENING_RE } from '../cli/ready-line.js';
import { startChild, stopChild, type Child } from '../cli/child-process.js';

const MiB = 1024 * 1024;
const HEARTBEAT_MS = 500;
const SUSPECT_MS = 1_500;
const DEAD_MS = 3_000;
/** Files the fill is split into. */
const FILE_MIB = 256;
/** Application write size and writes in flight (as `gfs bench` does). */
const PIECE = 8 * MiB;
const IN_FLIGHT = 4;

export interface RepairBenchOptions {
  sizeMiB: number;
  chunkservers: number;
  chunkSize: number;
  cloneBytesPerSec: number;
  maxClones: number;
  writeMiB: number;
  data?: string;
  out: string;
}

export interface RepairBenchResult {
  sizeMiB: number;
  chunkservers: number;
  chunkSize: number;
  cloneBytesPerSec: number;
  maxClones: number;
  chunks: number;
  chunksOnKilled: number;
  fillMBps: number;
  detectMs: number;
  killToFullMs: number;
  deadToFullMs: number;
  bytesCloned: number;
  clones: number;
  repairMBps: number;
  boundMBps: number;
  writeBaselineMBps: number;
  writeDuringRepairMBps: number;
  writeDuringRepairOverlap: number;
}

async function writeStream(client: GfsClient, path: string, bytes: number, src: Buffer): Promise<number> {
  const attr = await client.create(path, 0o100644);
  const t0 = performance.now();
  for (let off = 0; off < bytes; off += PIECE * IN_FLIGHT) {
    const batch: Promise<void>[] = [];
    for (let k = 0; k < IN_FLIGHT && off + k * PIECE < bytes; k++) {
      const s = off + k * PIECE;
      const n = Math.min(PIECE, bytes - s);
      batch.push(client.writeData(attr.ino, s, src.subarray(s % src.length, (s % src.length) + n)));
    }
    await Promise.all(batch);
  }
  await client.commitWrite(attr.ino, bytes);
  return performance.now() - t0;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function runRepairBench(o: RepairBenchOptions, log: (s: string) => void = () => undefined): Promise<RepairBenchResult> {
  const dir = o.data ? resolve(o.data) : mkdtempSync(join(tmpdir(), 'gfs-repair-bench-'));
  mkdirSync(dir, { recursive: true });
  const children: Child[] = [];
  const start = (name: string, args: string[]) => startChild(name, args, LISTENING_RE, join(dir, `${name}.stderr`));
  try {
    const master = await start('master', [
      'master', '--data', join(dir, 'master'), '--log-file', join(dir, 'master.log'),
      '--chunk-size', String(o.chunkSize), '--heartbeat-ms', String(HEARTBEAT_MS),
      '--suspect-after-ms', String(SUSPECT_MS), '--dead-after-ms', String(DEAD_MS),
      '--clone-bytes-per-sec', String(o.cloneBytesPerSec), '--max-clones', String(o.maxClones),
    ]);
    children.push(master);
    const servers: Child[] = [];
    for (let i = 1; i <= o.chunkservers; i++) {
      const cs = await start(`cs${i}`, ['chunkserver', '--data', join(dir, `cs${i}`), '--master', master.ready, '--log-file', join(dir, `cs${i}.log`), '--heartbeat-ms', String(HEARTBEAT_MS), '--secret-file', join(dir, 'master', 'cluster.secret')]);
      children.push(cs);
      servers.push(cs);
    }
    const client = new GfsClient({ master: master.ready, secretFile: join(dir, 'master', 'client.key') });
    for (let i = 0; ; i++) {
      const s = await client.clusterStatus();
      if (s.servers.filter((v) => v.state === 'alive').length >= o.chunkservers) break;
      if (i > 150) throw new Error('chunkservers did not come up');
      await sleep(200);
    }

    // Fill.
    const src = randomBytes(64 * MiB);
    const total = o.sizeMiB * MiB;
    log(`filling ${o.sizeMiB} MiB (goal 3, ${o.chunkservers} chunkservers, chunk size ${o.chunkSize / MiB} MiB) ...`);
    let t = performance.now();
    for (let off = 0, n = 0; off < total; off += FILE_MIB * MiB, n++) {
      await writeStream(client, `/fill-${n}.bin`, Math.min(FILE_MIB * MiB, total - off), src);
    }
    const fillMBps = total / 1e6 / ((performance.now() - t) / 1000);
    log(`fill: ${fillMBps.toFixed(0)} MB/s`);

    // Baseline client writes, no repair running.
    const writeBytes = o.writeMiB * MiB;
    const baseMs = await writeStream(client, '/load-baseline.bin', writeBytes, src);
    const writeBaselineMBps = writeBytes / 1e6 / (baseMs / 1000);
    log(`client writes, no repair: ${writeBaselineMBps.toFixed(0)} MB/s`);
    // Every chunk's length reaches the master in a full report (every 10 heartbeats).
    await sleep(12 * HEARTBEAT_MS);

    const before = await client.clusterStatus();
    const victim = servers[0]!;
    const victimId = before.servers.find((s) => s.addr === victim.ready)?.serverId;
    const chunksOnKilled = before.servers.find((s) => s.serverId === victimId)?.chunks ?? 0;
    const base = before.repair!;

    // SIGKILL.
    const tKill = performance.now();
    victim.proc.kill('SIGKILL');
    log(`SIGKILL ${victim.name} (${victimId}, ${chunksOnKilled} chunks)`);
    let tDead = 0;
    for (;;) {
      const s = await client.clusterStatus();
      if (s.servers.find((v) => v.serverId === victimId)?.state === 'dead') {
        tDead = performance.now();
        break;
      }
      await sleep(50);
    }
    log(`declared dead after ${(tDead - tKill).toFixed(0)} ms; repairing and writing ...`);

    // Client writes while the repair runs; the repair is polled at the same time.
    let tFull = 0;
    let polling = true;
    const poll = (async () => {
      while (polling) {
        const f = await client.fsck('/');
        if (f.underReplicated === 0 && f.missing === 0) {
          tFull = performance.now();
          return;
        }
        await sleep(100);
      }
    })();
    const tw0 = performance.now();
    const loadMs = await writeStream(client, '/load-during-repair.bin', writeBytes, src);
    const tw1 = performance.now();
    const writeDuringRepairMBps = writeBytes / 1e6 / (loadMs / 1000);
    log(`client writes during repair: ${writeDuringRepairMBps.toFixed(0)} MB/s`);
    const deadline = Date.now() + 30 * 60_000;
    while (!tFull && Date.now() < deadline) await Promise.race([poll, sleep(500)]);
    polling = false;
    if (!tFull) throw new Error('repair did not finish within 30 minutes');
    const after = await client.clusterStatus();
    const rep = after.repair!;
    const bytesCloned = rep.bytesCloned - base.bytesCloned;
    const clones = rep.clonesSucceeded - base.clonesSucceeded;
    const overlapMs = Math.max(0, Math.min(tw1, tFull) - tw0);
    const chunks = after.chunks;
    await client.close();
    const result: RepairBenchResult = {
      sizeMiB: o.sizeMiB,
      chunkservers: o.chunkservers,
      chunkSize: o.chunkSize,
      cloneBytesPerSec: o.cloneBytesPerSec,
      maxClones: o.maxClones,
      chunks,
      chunksOnKilled,
      fillMBps: round(fillMBps),
      detectMs: Math.round(tDead - tKill),
      killToFullMs: Math.round(tFull - tKill),
      deadToFullMs: Math.round(tFull - tDead),
      bytesCloned,
      clones,
      repairMBps: round(bytesCloned / 1e6 / ((tFull - tDead) / 1000)),
      boundMBps: round((Math.min(o.maxClones, Math.max(1, o.chunkservers - 1) * 2) * o.cloneBytesPerSec) / 1e6),
      writeBaselineMBps: round(writeBaselineMBps),
      writeDuringRepairMBps: round(writeDuringRepairMBps),
      writeDuringRepairOverlap: round(overlapMs / (tw1 - tw0)),
    };
    return result;
  } finally {
    await Promise.all(children.map((c) => stopChild(c)));
    if (!o.data) rmSync(dir, { recursive: true, force: true });
  }
}

function round(n: number): number {
  return Math.round(n * 10) / 10;
}

export async function runRepairBenchCli(o: RepairBenchOptions): Promise<void> {
  for (const [k, v] of Object.entries({ sizeMiB: o.sizeMiB, chunkservers: o.chunkservers, chunkSize: o.chunkSize, cloneBytesPerSec: o.cloneBytesPerSec, maxClones: o.maxClones, writeMiB: o.writeMiB })) {
    if (!Number.isFinite(v) || v <= 0) throw new Error(`--${k} must be a positive number`);
  }
  if (o.chunkservers < 4) throw new Error('--chunkservers must be at least 4 (goal 3 after one is killed)');
  const r = await runRepairBench(o, (s) => process.stderr.write(`bench-repair: ${s}\n`));
  const lines = [
    `cluster: ${r.sizeMiB} MiB logical (goal 3), ${r.chunks} chunks of ${r.chunkSize / MiB} MiB, ${r.chunkservers} chunkservers; killed one holding ${r.chunksOnKilled} chunks`,
    `detection (SIGKILL -> dead):           ${(r.detectMs / 1000).toFixed(1)} s`,
    `SIGKILL -> every chunk at 3 replicas:  ${(r.killToFullMs / 1000).toFixed(1)} s   (dead -> full: ${(r.deadToFullMs / 1000).toFixed(1)} s)`,
    `repair: ${r.clones} clones, ${(r.bytesCloned / MiB).toFixed(0)} MiB, ${r.repairMBps} MB/s   (bound: ${r.maxClones} clones x ${(r.cloneBytesPerSec / 1e6).toFixed(1)} MB/s = ${r.boundMBps} MB/s)`,
    `client writes: ${r.writeBaselineMBps} MB/s with no repair, ${r.writeDuringRepairMBps} MB/s during repair (${Math.round(r.writeDuringRepairOverlap * 100)}% of the write overlapped the repair)`,
  ];
  process.stdout.write(lines.join('\n') + '\n');
  mkdirSync(o.out, { recursive: true });
  const file = join(o.out, `repair-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify(r, null, 2) + '\n');
  process.stdout.write(`results: ${file}\n`);
}
