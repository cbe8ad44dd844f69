// Issue 4 acceptance through the mount: several thousand mixed metadata operations from
// concurrent processes on a real mount while the master is SIGKILLed at random (seeded)
// moments and restarted on its data dir. Everything a worker saw succeed is there afterwards
// with the right bytes, modes and link targets; an operation that failed happened wholly or
// not at all. Then a clean stop of everything and a fresh start find the same tree.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { shOk, startTestCluster, type TestCluster } from './cluster.js';

const SEED = Number(process.env.GFS_CRASH_SEED ?? 4242);
const WORKERS = 4;
const OPS = 800; // per worker: 3,200 operations in all
const KILLS = 5;
const SCRIPT = resolve('test/e2e/scripts/crash-workload.py');

let c: TestCluster;
let LOCAL: string;

beforeAll(async () => {
  c = await startTestCluster({ chunkservers: 3, mount: true, heartbeatMs: 300 });
  LOCAL = mkdtempSync(join(tmpdir(), 'gfs-e2e-crash-'));
}, 60_000);

afterAll(async () => {
  await c?.stop();
  if (LOCAL) rmSync(LOCAL, { recursive: true, force: true });
});

function runPy(args: string[], timeoutMs: number): Promise<{ code: number | null; out: string }> {
  return new Promise((res) => {
    const p = spawn('python3', [SCRIPT, ...args], { cwd: '/', stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (b) => (out += b));
    p.stderr.on('data', (b) => (out += b));
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('exit', (code) => {
      clearTimeout(timer);
      res({ code, out });
    });
  });
}

/** mulberry32: the kill schedule is reproducible from SEED. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('master crash loop through the mount', () => {
  test(`${WORKERS} x ${OPS} metadata operations survive ${KILLS} SIGKILLs of the master (seed ${SEED})`, async () => {
    const models = Array.from({ length: WORKERS }, (_, i) => join(LOCAL, `model${i}.json`));
    const workers = models.map((m, i) => runPy(['work', join(c.mountDir, `w${i}`), String(SEED + i), String(OPS), m], 600_000));
    let running = true;
    void Promise.all(workers).then(() => (running = false));
    const rand = rng(SEED);
    let kills = 0;
    while (running && kills < KILLS) {
      await new Promise((r) => setTimeout(r, 500 + rand() * 1500));
      if (!running) break;
      await c.restartMaster();
      kills++;
    }
    const results = await Promise.all(workers);
    for (const r of results) expect(r.code, r.out).toBe(0);
    console.log(`master kills: ${kills}; workers: ${results.map((r) => r.out.trim()).join(' | ')}`);
    expect(kills, 'the workload outlived at least two master crashes').toBeGreaterThanOrEqual(2);

    for (const m of models) expect((await runPy(['verify', m], 300_000)).out.trim()).toBe('OK');
    // One more crash with nothing in flight: still all there.
    await c.restartMaster();
    for (const m of models) expect((await runPy(['verify', m], 300_000)).out.trim()).toBe('OK');
  }, 900_000);

  test('a clean stop of every process and a fresh start find the same tree', async () => {
    const tree = async () =>
      (await shOk(`cd ${c.mountDir} && find . -printf '%p %y %m %s %l\\n' | LC_ALL=C sort`, { timeoutMs: 120_000 })).split('\n');
    const before = await tree();
    await c.restartWhole();
    const after = await tree();
    // Compare as sets of lines so a failure names the entries that differ, not two digests.
    const afterSet = new Set(after);
    const beforeSet = new Set(before);
    const gone = before.filter((l) => !afterSet.has(l));
    const appeared = after.filter((l) => !beforeSet.has(l));
    expect({ gone, appeared }).toEqual({ gone: [], appeared: [] });
    expect(after.length).toBe(before.length);
  }, 300_000);
});
