// The client-library experiments of `gfs bench`, run against a cluster that is already up:
// - a test file written and read back sequentially through GfsClient (MB/s, sha256 checked);
// - the dispatch experiment: N small reads at random offsets one at a time, and the same reads
//   all in flight at once (reads/s, mean/p99 latency, RSS the in-flight reads added, errors).
import { randomBytes, createHash } from 'node:crypto';
import { GfsClient, type ClientOptions } from '../client/client.js';
import { RssSampler, summarize } from './stats.js';

const MiB = 1024 * 1024;

export interface TestFile {
  path: string;
  ino: number;
  size: number;
  writeMBps: number;
  readMBps: number;
}

export interface DispatchResult {
  reads: number;
  readBytes: number;
  /** The first in-flight pass of the process (see dispatchExperiment). */
  firstPass: { opsPerSec: number; addedRssMB: number; errors: number };
  serial: { opsPerSec: number; meanMs: number; p99Ms: number; errors: number };
  parallel: { opsPerSec: number; meanMs: number; p99Ms: number; addedRssMB: number; errors: number };
}

export async function waitLive(client: GfsClient, n: number, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const s = await client.clusterStatus();
    if (s.servers.filter((v) => v.state === 'alive').length >= n) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`fewer than ${n} live chunkservers after ${timeoutMs / 1000} s`);
}

/** Writes `sizeMiB` of random bytes (8 MiB application writes, 4 in flight), reads them back. */
export async function writeTestFile(conn: ClientOptions, path: string, sizeMiB: number): Promise<TestFile> {
  const client = new GfsClient(conn);
  try {
    await waitLive(client, 3);
    const size = sizeMiB * MiB;
    const data = randomBytes(size);
    const attr = await client.create(path, 0o100644);
    let t = performance.now();
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

    const reader = new GfsClient(conn);
    try {
      t = performance.now();
      const back = await reader.read(attr.ino, 0, size);
      const readMBps = size / 1e6 / ((performance.now() - t) / 1000);
      if (createHash('sha256').update(back).digest('hex') !== createHash('sha256').update(data).digest('hex')) {
        throw new Error('client benchmark read back different bytes');
      }
      return { path, ino: attr.ino, size, writeMBps, readMBps };
    } finally {
      await reader.close();
    }
  } finally {
    await client.close();
  }
}

export async function removeTestFile(conn: ClientOptions, f: TestFile): Promise<void> {
  const client = new GfsClient(conn);
  try {
    await client.unlink(f.path);
  } finally {
    await client.close();
  }
}

/** Random 4 KiB-aligned offsets within the file. */
export function randomOffsets(n: number, size: number, readBytes: number): number[] {
  return Array.from({ length: n }, () => Math.floor(Math.random() * ((size - readBytes) / 4096)) * 4096);
}

/**
 * One timed small read for the experiments: its latency in ms, and whether it failed (an
 * error, or a short answer inside the file).
 */
export async function timedRead(reader: GfsClient, ino: number, off: number, bytes: number): Promise<{ ms: number; failed: boolean }> {
  const s = performance.now();
  let failed = false;
  try {
    failed = (await reader.read(ino, off, bytes)).length !== bytes;
  } catch {
    failed = true;
  }
  return { ms: performance.now() - s, failed };
}

/** All the reads in flight at once: reads/s, latencies and failures. */
async function inFlightPass(reader: GfsClient, ino: number, offsets: number[], readBytes: number): Promise<{ opsPerSec: number; lat: number[]; errors: number }> {
  const lat: number[] = [];
  let errors = 0;
  const t = performance.now();
  await Promise.all(
    offsets.map(async (off) => {
      const r = await timedRead(reader, ino, off, readBytes);
      if (r.failed) errors++;
      lat.push(r.ms);
    }),
  );
  return { opsPerSec: offsets.length / ((performance.now() - t) / 1000), lat, errors };
}

/** RSS after a full GC and a moment for freed backing stores to be returned. */
async function settledRss(): Promise<number> {
  globalThis.gc?.();
  await new Promise((r) => setTimeout(r, 100));
  globalThis.gc?.();
  return process.memoryUsage.rss();
}

/** An in-flight pass with the RSS it added: its peak over the settled RSS before it. */
async function measuredPass(reader: GfsClient, ino: number, offsets: number[], readBytes: number) {
  const base = await settledRss();
  const rss = new RssSampler();
  rss.start();
  const pass = await inFlightPass(reader, ino, offsets, readBytes);
  // Memory handed back between the baseline and the first sample is no negative cost.
  return { ...pass, addedRssMB: Math.max(0, rss.stop() - base) / 1e6 };
}

/**
 * Random reads through a fresh client: all in flight once (the first pass, in a process that
 * has not done it before), then one at a time, then all in flight again (the measured pass).
 * Serial and measured passes both run warm, as in a mount that has been up a while: the
 * first in-flight pass of a process pays for compiling its paths and growing its heap and
 * allocator (about twice the CPU per read here), which the serial pass never meets. The first
 * pass's rate is reported beside the others, and memory is judged on it (suite.ts).
 */
export async function dispatchExperiment(conn: ClientOptions, f: TestFile, reads: number, readBytes: number): Promise<DispatchResult> {
  const reader = new GfsClient(conn);
  try {
    const offsets = randomOffsets(reads, f.size, readBytes);
    await reader.read(f.ino, 0, readBytes); // warm locations and connections
    const first = await measuredPass(reader, f.ino, offsets, readBytes);

    const serialLat: number[] = [];
    let serialErrors = 0;
    const t = performance.now();
    for (const off of offsets) {
      const r = await timedRead(reader, f.ino, off, readBytes);
      if (r.failed) serialErrors++;
      serialLat.push(r.ms);
    }
    const serialSec = (performance.now() - t) / 1000;

    const par = await measuredPass(reader, f.ino, offsets, readBytes);
    const sl = summarize(serialLat);
    const pl = summarize(par.lat);
    return {
      reads,
      readBytes,
      firstPass: { opsPerSec: first.opsPerSec, addedRssMB: first.addedRssMB, errors: first.errors },
      serial: { opsPerSec: reads / serialSec, meanMs: sl.mean, p99Ms: sl.p99, errors: serialErrors },
      parallel: { opsPerSec: par.opsPerSec, meanMs: pl.mean, p99Ms: pl.p99, addedRssMB: par.addedRssMB, errors: par.errors },
    };
  } finally {
    await reader.close();
  }
}
