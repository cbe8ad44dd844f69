// Issue 4 acceptance (client-library level): a real master and 3 chunkservers; the master is
// SIGKILLed at random (seeded) moments during a mixed metadata workload and restarted on the
// same port and data dir. Everything the workload saw succeed must be there afterwards, with
// the right bytes; an operation that failed may or may not have happened, but only whole.
// Then: a restart after 100,000 files loads from a checkpoint (time printed, not asserted).
import { createHash } from 'node:crypto';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Attr } from '../../src/client/api.js';
import { GfsClient } from '../../src/client/client.js';
import { GfsError } from '../../src/common/errors.js';
import { silentLogger } from '../../src/common/logger.js';
import { MasterCore } from '../../src/master/core.js';
import { ROOT_CRED } from '../../src/master/inode.js';
import { NamespaceOps } from '../../src/master/namespace-ops.js';
import { MasterStore } from '../../src/master/store.js';
import { CLI, spawnGfs, startProcCluster, waitFor, type ProcCluster } from '../helpers/proc-cluster.js';

const SEED = Number(process.env.GFS_CRASH_SEED ?? 20240604);
const WORKERS = 12;
const OPS_PER_WORKER = 250; // 3,000 operations (+ the writes of the files they create)
const KILLS = 5;

/** Small deterministic PRNG (mulberry32). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const S_IFLNK = 0o120000;

type Node =
  | { kind: 'dir' }
  | { kind: 'file'; id: number; sha: string; size: number; mode: number }
  | { kind: 'link'; target: string };

/** What one worker believes its directory holds: path -> node (files shared by hard links). */
class Model {
  readonly nodes = new Map<string, Node>();
  constructor(readonly root: string) {
    this.nodes.set(root, { kind: 'dir' });
  }
  files(): string[] {
    return [...this.nodes].filter(([, n]) => n.kind === 'file').map(([p]) => p);
  }
  dirs(): string[] {
    return [...this.nodes].filter(([, n]) => n.kind === 'dir').map(([p]) => p);
  }
  children(dir: string): string[] {
    return [...this.nodes.keys()].filter((p) => p !== dir && p.startsWith(`${dir}/`) && !p.slice(dir.length + 1).includes('/'));
  }
}

const codeOf = (err: unknown) => (err instanceof GfsError ? err.code : `non-GfsError: ${String(err)}`);

async function tryAttr(c: GfsClient, path: string): Promise<Attr | undefined> {
  try {
    return await c.getattr(path);
  } catch (err) {
    if (codeOf(err) === 'ENOENT') return undefined;
    throw err;
  }
}

describe('master crash loop (SIGKILL during a mixed metadata workload)', () => {
  let c: ProcCluster;
  let client: GfsClient;
  const violations: string[] = [];
  const stats = { ok: 0, failed: 0, restarts: 0, restartMs: [] as number[], byCode: new Map<string, number>() };

  beforeAll(async () => {
    // A small checkpoint bound, so checkpoints (and crashes during them) happen in the loop.
    c = await startProcCluster({ chunkservers: 3, masterArgs: ['--checkpoint-bytes', String(96 * 1024)] });
    client = new GfsClient({ master: c.master.addr, secretFile: c.clientKeyFile, masterRetryWindowMs: 60_000, masterCallTimeoutMs: 5_000 });
    await waitFor(async () => (await client.clusterStatus()).servers.filter((s) => s.state === 'alive').length === 3, '3 live chunkservers');
  });
  afterAll(async () => {
    await client?.close();
    await c?.stop();
  });

  /** One worker: sequential ops in its own directory, checking every failure for wholeness. */
  async function worker(w: number, rand: () => number, progress: () => void): Promise<Model> {
    const m = new Model(`/w${w}`);
    await client.mkdir(m.root, 0o755);
    let nextName = 0;
    let nextId = 0;
    const fresh = (dir: string) => `${dir}/n${nextName++}`;
    const pick = <T>(xs: T[]): T | undefined => (xs.length ? xs[Math.floor(rand() * xs.length)] : undefined);
    const violation = (msg: string) => violations.push(`worker ${w}: ${msg}`);

    /** Runs a step; on failure, `check` decides whether the outcome is whole and fixes the model. */
    async function step(name: string, allowed: string[], fn: () => Promise<void>, check: () => Promise<void>): Promise<void> {
      try {
        await fn();
        stats.ok++;
      } catch (err) {
        stats.failed++;
        const code = codeOf(err);
        stats.byCode.set(code, (stats.byCode.get(code) ?? 0) + 1);
        if (!allowed.includes(code)) violation(`${name} failed with ${(err as Error).message}`);
        await check();
      }
    }

    async function writeFile(path: string, node: Extract<Node, { kind: 'file' }>, data: Buffer): Promise<void> {
      // Writes are idempotent (same bytes at offset 0): retry until they succeed, checking
      // after each failure that the size is either old or new and the bytes are right.
      for (let attempt = 0; ; attempt++) {
        try {
          const attr = await client.getattr(path);
          await client.write(attr.ino, 0, data);
          node.sha = sha(data);
          node.size = data.length;
          stats.ok++;
          return;
        } catch (err) {
          stats.failed++;
          const a = await client.getattr(path);
          if (a.size !== 0 && a.size !== data.length) violation(`write of ${path} left size ${a.size} (not 0 or ${data.length})`);
          if (attempt > 20) throw err;
        }
      }
    }

    for (let i = 0; i < OPS_PER_WORKER; i++) {
      const r = rand();
      const dirs = m.dirs();
      const files = m.files();
      if (r < 0.3 || files.length < 3) {
        // create + write small data
        const dir = pick(dirs)!;
        const path = fresh(dir);
        const data = Buffer.from(Array.from({ length: 1 + Math.floor(rand() * 6000) }, () => Math.floor(rand() * 256)));
        const node = { kind: 'file' as const, id: nextId++, sha: sha(Buffer.alloc(0)), size: 0, mode: 0o644 };
        let created = false;
        await step('create', ['EEXIST'], async () => {
          await client.create(path, S_IFREG | 0o644, undefined, { exclusive: true });
          created = true;
        }, async () => {
          const a = await tryAttr(client, path);
          if (a && ((a.mode & S_IFMT) !== S_IFREG || a.size !== 0)) violation(`failed create left ${path} mode ${a.mode.toString(8)} size ${a.size}`);
          created = a !== undefined;
        });
        if (created) {
          m.nodes.set(path, node);
          await writeFile(path, node, data);
        }
      } else if (r < 0.42) {
        const path = fresh(pick(dirs)!);
        await step('mkdir', ['EEXIST'], async () => {
          await client.mkdir(path, 0o755);
          m.nodes.set(path, { kind: 'dir' });
        }, async () => {
          const a = await tryAttr(client, path);
          if (a && (a.mode & S_IFMT) !== S_IFDIR) violation(`failed mkdir left ${path} as mode ${a.mode.toString(8)}`);
          if (a) m.nodes.set(path, { kind: 'dir' });
        });
      } else if (r < 0.6) {
        // rename a file (or a leaf directory) to a fresh name, possibly in another directory
        const candidates = [...files, ...dirs.filter((d) => d !== m.root && m.children(d).length === 0)];
        const src = pick(candidates)!;
        const dst = fresh(pick(dirs.filter((d) => d !== src && !d.startsWith(`${src}/`)))!);
        const before = await client.getattr(src);
        const node = m.nodes.get(src)!;
        await step('rename', ['ENOENT'], async () => {
          await client.rename(src, dst);
          m.nodes.delete(src);
          m.nodes.set(dst, node);
        }, async () => {
          const [a, b] = [await tryAttr(client, src), await tryAttr(client, dst)];
          if ((a === undefined) === (b === undefined)) violation(`failed rename ${src} -> ${dst} is half-applied: src ${!!a}, dst ${!!b}`);
          if (b && b.ino !== before.ino) violation(`failed rename ${src} -> ${dst}: dst is inode ${b.ino}, not ${before.ino}`);
          if (b) {
            m.nodes.delete(src);
            m.nodes.set(dst, node);
          }
        });
      } else if (r < 0.72) {
        const path = pick(files)!;
        const node = m.nodes.get(path)!;
        const before = await client.getattr(path);
        await step('unlink', ['ENOENT'], async () => {
          await client.unlink(path);
          m.nodes.delete(path);
        }, async () => {
          const a = await tryAttr(client, path);
          if (a && a.ino !== before.ino) violation(`failed unlink of ${path}: now inode ${a.ino}`);
          if (!a) m.nodes.delete(path);
          else m.nodes.set(path, node);
        });
      } else if (r < 0.82) {
        const path = pick(files)!;
        const node = m.nodes.get(path) as Extract<Node, { kind: 'file' }>;
        const mode = [0o600, 0o640, 0o644, 0o755, 0o700][Math.floor(rand() * 5)]!;
        await step('chmod', [], async () => {
          await client.setattr(path, { mode });
          node.mode = mode;
        }, async () => {
          const a = await client.getattr(path);
          if ((a.mode & 0o7777) !== mode && (a.mode & 0o7777) !== node.mode) violation(`failed chmod of ${path} left mode ${a.mode.toString(8)}`);
          node.mode = a.mode & 0o7777;
        });
      } else if (r < 0.91) {
        const target = `target-${i}-${Math.floor(rand() * 1e6)}`;
        const path = fresh(pick(dirs)!);
        await step('symlink', ['EEXIST'], async () => {
          await client.symlink(target, path);
          m.nodes.set(path, { kind: 'link', target });
        }, async () => {
          const a = await tryAttr(client, path);
          if (a && ((a.mode & S_IFMT) !== S_IFLNK || (await client.readlink(path)) !== target)) violation(`failed symlink left ${path} wrong`);
          if (a) m.nodes.set(path, { kind: 'link', target });
        });
      } else {
        const src = pick(files)!;
        const node = m.nodes.get(src)!;
        const dst = fresh(pick(dirs)!);
        const before = await client.getattr(src);
        await step('link', ['EEXIST'], async () => {
          await client.link(src, dst);
          m.nodes.set(dst, node);
        }, async () => {
          const a = await tryAttr(client, dst);
          const now = await client.getattr(src);
          if (a && a.ino !== before.ino) violation(`failed link ${src} -> ${dst}: dst is inode ${a.ino}`);
          if (now.nlink !== before.nlink + (a ? 1 : 0)) violation(`failed link ${src} -> ${dst}: nlink ${now.nlink}, dst ${!!a}`);
          if (a) m.nodes.set(dst, node);
        });
      }
      progress();
    }
    return m;
  }

  /** Every path of the model is there with the right kind, mode, inode sharing and bytes; nothing else is. */
  async function verify(models: Model[]): Promise<number> {
    let checked = 0;
    for (const m of models) {
      const inoOfId = new Map<number, number>();
      for (const [path, node] of m.nodes) {
        const a = await tryAttr(client, path);
        if (!a) {
          violations.push(`${path} is missing`);
          continue;
        }
        checked++;
        if (node.kind === 'dir') {
          if ((a.mode & S_IFMT) !== S_IFDIR) violations.push(`${path} is not a directory`);
          const names = (await client.readdir(path)).map((e) => e.name).sort();
          const want = m.children(path).map((p) => p.slice(path.length + 1)).sort();
          if (JSON.stringify(names) !== JSON.stringify(want)) violations.push(`${path} lists [${names}] instead of [${want}]`);
        } else if (node.kind === 'link') {
          if ((a.mode & S_IFMT) !== S_IFLNK || (await client.readlink(path)) !== node.target) violations.push(`${path} is not the symlink it was`);
        } else {
          if ((a.mode & S_IFMT) !== S_IFREG || (a.mode & 0o7777) !== node.mode) violations.push(`${path} mode ${a.mode.toString(8)} != ${node.mode.toString(8)}`);
          const seen = inoOfId.get(node.id);
          if (seen === undefined) inoOfId.set(node.id, a.ino);
          else if (seen !== a.ino) violations.push(`${path} should share inode ${seen}, is ${a.ino}`);
          if (a.size !== node.size) violations.push(`${path} size ${a.size} != ${node.size}`);
          else if (sha(await client.readFile(path)) !== node.sha) violations.push(`${path} bytes differ`);
        }
      }
    }
    return checked;
  }

  it(`keeps every acknowledged operation across ${KILLS} SIGKILLs (seed ${SEED})`, async () => {
    const rand = rng(SEED);
    const total = WORKERS * OPS_PER_WORKER;
    // Kill points: seeded op counts spread over the run, plus a seeded delay after each.
    const killAt = Array.from({ length: KILLS }, (_, k) => Math.floor(total * (0.1 + (0.8 * (k + rand())) / KILLS)));
    const killDelayMs = killAt.map(() => Math.floor(rand() * 40));
    let done = 0;
    let killing: Promise<void> = Promise.resolve();
    let nextKill = 0;
    const progress = () => {
      done++;
      if (nextKill < killAt.length && done >= killAt[nextKill]!) {
        const delay = killDelayMs[nextKill++]!;
        killing = killing.then(async () => {
          await new Promise((r) => setTimeout(r, delay));
          stats.restartMs.push(await c.restartMaster());
          stats.restarts++;
        });
      }
    };
    const t0 = performance.now();
    const models = await Promise.all(Array.from({ length: WORKERS }, (_, w) => worker(w, rng(SEED * 31 + w), progress)));
    await killing;
    const workMs = performance.now() - t0;
    // One more kill after the last acknowledged operation, then check everything.
    stats.restartMs.push(await c.restartMaster());
    stats.restarts++;
    const checked = await verify(models);
    console.log(
      `crash loop: ${stats.ok} ops ok, ${stats.failed} failed (${[...stats.byCode].map(([k, v]) => `${k} ${v}`).join(', ') || 'none'}), ` +
        `${stats.restarts} restarts (spawn->ready ms: ${stats.restartMs.map((x) => x.toFixed(0)).join(', ')}), ` +
        `workload ${(workMs / 1000).toFixed(1)} s, ${checked} paths verified`,
    );
    expect(stats.restarts).toBe(KILLS + 1);
    expect(violations).toEqual([]);
    expect(checked).toBeGreaterThan(WORKERS * 20);
    // The master log shows recoveries, with checkpoints taken along the way.
    const log = await waitFor(() => {
      const text = readFileSync(join(c.dir, 'master.log'), 'utf8');
      return (text.match(/master state recovered/g) ?? []).length >= KILLS + 2 ? text : undefined;
    }, 'recovery lines in master.log');
    expect(log).toMatch(/checkpoint written/);
  });

  it('a second master on the same data dir refuses to start', async () => {
    const data = c.master.args[c.master.args.indexOf('--data') + 1]!;
    const p = spawn(process.execPath, [CLI, 'master', '--data', data, '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    p.stderr!.on('data', (b: Buffer) => (err += b.toString()));
    const code = await new Promise<number | null>((r) => p.once('exit', r));
    expect(code).not.toBe(0);
    expect(err).toMatch(/in use by another master \(pid \d+/);
  });
});

describe('restart after 100,000 files', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'gfs-100k-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('loads from a checkpoint (time printed, not asserted)', async () => {
    const FILES = 100_000;
    const data = join(dir, 'master');
    // Build the namespace in-process through the real mutation path and operation log.
    const t0 = performance.now();
    const cfg = { chunkSize: 64 * 1024 * 1024, replication: 3, heartbeatMs: 1000, suspectAfterMs: 3000, deadAfterMs: 10000, gcDelayMs: 0 };
    const { store, state } = await MasterStore.open({ dir: data, chunkSize: cfg.chunkSize, replication: 3, checkpointLogBytes: 4 * 1024 * 1024, log: silentLogger });
    const core = new MasterCore(cfg, silentLogger, { state });
    core.attachJournal(store);
    const ns = new NamespaceOps(core);
    for (let d = 0; d < 100; d++) {
      ns.mkdir(`/d${d}`, 0o755, ROOT_CRED, 0o022);
      for (let f = 0; f < FILES / 100; f++) ns.create(`/d${d}/file-${f}`, 0o644, ROOT_CRED, 0o022, true);
      await core.durable();
      await new Promise((r) => setImmediate(r)); // let a due checkpoint start
    }
    await store.idle();
    const built = performance.now() - t0;
    const ckpt = store.checkpoints;
    await store.close(); // no final checkpoint: the restart replays the log after the newest one
    core.close();

    const t1 = performance.now();
    const p = await spawnGfs('master', ['master', '--data', data, '--port', '0', '--log-file', join(dir, 'master.log')], dir);
    const restartMs = performance.now() - t1;
    const client = new GfsClient({ master: p.addr, secretFile: join(data, 'client.key') });
    try {
      // The log file is written asynchronously: wait for the recovery line.
      const rec = await waitFor(
        () =>
          readFileSync(join(dir, 'master.log'), 'utf8')
            .split('\n')
            .filter((l) => l.includes('master state recovered'))
            .map((l) => JSON.parse(l) as Record<string, number>)[0],
        'the recovery line in master.log',
      );
      console.log(
        `100k files: built in ${(built / 1000).toFixed(1)} s with ${ckpt.taken} checkpoints (last ${ckpt.lastBytes} bytes for ${ckpt.lastInodes} inodes = ` +
          `${(ckpt.lastBytes / ckpt.lastInodes).toFixed(0)} B/inode); restart spawn->ready ${restartMs.toFixed(0)} ms; ` +
          `recovery: checkpoint ${rec.checkpointBytes} bytes loaded in ${rec.checkpointMs} ms, ${rec.recordsReplayed} records replayed in ${rec.replayMs} ms, total ${rec.totalMs} ms`,
      );
      expect(rec.checkpointSeq).toBeGreaterThan(1); // a checkpoint taken during the build, not the empty first one
      expect(rec.recordsReplayed).toBeLessThan(FILES);
      expect(rec.inodes).toBe(FILES + 101);
      expect((await client.readdir('/d99')).length).toBe(FILES / 100);
      expect((await client.getattr('/d0/file-0')).mode & S_IFMT).toBe(S_IFREG);
      expect((await client.getattr(`/d99/file-${FILES / 100 - 1}`)).size).toBe(0);
    } finally {
      await client.close();
      await new Promise<void>((r) => {
        p.proc.once('exit', () => r());
        p.proc.kill('SIGTERM');
      });
    }
  });
});
