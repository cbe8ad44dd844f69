// Concurrency ramp through the client library: for c = 1, 2, 4, ..., max, keep c random small
// reads in flight for a fixed time and report reads/s and mean/p99 latency per step. Shows
// where throughput stops growing and latency starts paying for queueing.
import { GfsClient, type ClientOptions } from '../client/client.js';
import { timedRead, type TestFile } from './client-bench.js';
import { summarize } from './stats.js';

export interface RampStep {
  concurrency: number;
  reads: number;
  seconds: number;
  readsPerSec: number;
  meanMs: number;
  p99Ms: number;
  errors: number;
}

export function rampLevels(max: number): number[] {
  const levels: number[] = [];
  for (let c = 1; c <= max; c *= 2) levels.push(c);
  return levels;
}

export async function rampExperiment(conn: ClientOptions, f: TestFile, levels: number[], stepMs: number, readBytes: number): Promise<RampStep[]> {
  const reader = new GfsClient(conn);
  const steps: RampStep[] = [];
  try {
    await reader.read(f.ino, 0, readBytes); // warm locations and connections
    const slots = Math.floor((f.size - readBytes) / 4096);
    for (const c of levels) {
      const lat: number[] = [];
      let errors = 0;
      const t0 = performance.now();
      const deadline = t0 + stepMs;
      const worker = async () => {
        while (performance.now() < deadline) {
          const r = await timedRead(reader, f.ino, Math.floor(Math.random() * slots) * 4096, readBytes);
          if (r.failed) errors++;
          lat.push(r.ms);
        }
      };
      await Promise.all(Array.from({ length: c }, worker));
      const seconds = (performance.now() - t0) / 1000;
      const s = summarize(lat);
      steps.push({ concurrency: c, reads: lat.length, seconds, readsPerSec: lat.length / seconds, meanMs: s.mean, p99Ms: s.p99, errors });
    }
    return steps;
  } finally {
    await reader.close();
  }
}
