// A real gfs cluster for end-to-end tests: a master, N chunkservers and the FUSE mount, each
// its own `gfs` process (the built CLI in dist/, as users run it) on 127.0.0.1 with ephemeral
// ports and temp dirs. A GfsClient in the test process talks to the cluster directly.
// Tests touch the mount only from child processes (shell tools, python), never with
// synchronous fs calls of their own.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, closeSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GfsClient } from '../../src/client/client.js';
import { CLI, spawnGfs, type Proc } from '../helpers/proc-cluster.js';

const MOUNT_READY_MS = 30_000;
const STOP_GRACE_MS = 20_000;

export interface TestChunkserver {
  dataDir: string;
  proc: Proc;
  /** SIGTERM and wait. */
  stop(): Promise<void>;
  /** SIGKILL: the process dies mid-whatever, as in a crash. */
  kill(): Promise<void>;
}

export interface TestMount {
  proc: ChildProcess;
  /** SIGTERM to the mount process, which flushes, unmounts and exits. */
  unmount(): Promise<void>;
}

export interface TestCluster {
  dir: string;
  masterAddr: string;
  mountDir: string;
  mount?: TestMount;
  client: GfsClient;
  chunkservers: TestChunkserver[];
  /** Mounts (again) at mountDir with a new `gfs mount` process, e.g. after unmount(). */
  remount(): Promise<TestMount>;
  /** SIGKILLs the master and starts it again on the same port and data dir (a crash + restart). */
  restartMaster(): Promise<void>;
  /** Unmounts and stops every process cleanly, then starts them all again on the same dirs. */
  restartWhole(): Promise<void>;
  stop(): Promise<void>;
}

export interface TestClusterOptions {
  chunkservers?: number;
  mount?: boolean;
  chunkSize?: number;
  heartbeatMs?: number;
  /** Extra `gfs master` flags (e.g. --exports FILE). */
  masterArgs?: string[];
}

function exited(p: ChildProcess): boolean {
  return p.exitCode !== null || p.signalCode !== null;
}

/** Sends `signal` and resolves when the process is gone (SIGKILL after a grace period). */
export function signalAndWait(p: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (exited(p)) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => p.kill('SIGKILL'), STOP_GRACE_MS);
    p.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    p.kill(signal);
  });
}

/** Starts a `gfs mount` of `masterAddr` at `mountDir` (logs in dir/mount<n>.*). */
export function startMount(dir: string, masterAddr: string, mountDir: string, n: number): Promise<TestMount> {
  const err = openSync(join(dir, `mount${n}.stderr`), 'a');
  const secret = ['--secret-file', join(dir, 'master', 'client.key')];
  const proc = spawn(process.execPath, [CLI, 'mount', '--master', masterAddr, mountDir, '--log-file', join(dir, `mount${n}.log`), ...secret], {
    stdio: ['ignore', 'pipe', err],
    cwd: '/',
  });
  closeSync(err);
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`gfs mount not ready within ${MOUNT_READY_MS} ms (see ${dir}/mount${n}.stderr)`));
    }, MOUNT_READY_MS);
    proc.stdout!.on('data', (b: Buffer) => {
      out += b.toString();
      if (/gfs: mounted at /.test(out)) {
        clearTimeout(timer);
        resolve({ proc, unmount: () => signalAndWait(proc, 'SIGTERM') });
      }
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`gfs mount exited with ${code} before it was ready (see ${dir}/mount${n}.stderr)`));
    });
  });
}

export async function startTestCluster(opts: TestClusterOptions = {}): Promise<TestCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'gfs-e2e-'));
  chmodSync(dir, 0o755); // non-root test users must reach the mount point
  const mountDir = join(dir, 'mnt');
  const hb = String(opts.heartbeatMs ?? 500);
  const masterArgs = ['master', '--data', join(dir, 'master'), '--port', '0', '--heartbeat-ms', hb, '--log-file', join(dir, 'master.log')];
  if (opts.chunkSize) masterArgs.push('--chunk-size', String(opts.chunkSize));
  masterArgs.push(...(opts.masterArgs ?? []));
  let master = await spawnGfs('master', masterArgs, dir);
  const masterPort = master.addr.split(':').pop()!;
  const chunkservers: TestChunkserver[] = [];
  const client = new GfsClient({ master: master.addr, secretFile: join(dir, 'master', 'client.key') });
  let mounts = 0;
  const cluster: TestCluster = {
    dir,
    masterAddr: master.addr,
    mountDir,
    client,
    chunkservers,
    async remount() {
      cluster.mount = await startMount(dir, master.addr, mountDir, ++mounts);
      return cluster.mount;
    },
    async restartMaster() {
      await signalAndWait(master.proc, 'SIGKILL');
      const args = masterArgs.map((a, i) => (masterArgs[i - 1] === '--port' ? masterPort : a));
      master = await spawnGfs('master', args, dir);
    },
    restartWhole: async () => undefined, // set below, once chunkservers can be started
    async stop() {
      if (cluster.mount) await cluster.mount.unmount().catch(() => undefined);
      await client.close().catch(() => undefined);
      await Promise.allSettled(chunkservers.map((c) => c.stop()));
      await signalAndWait(master.proc, 'SIGTERM');
      // A mount process that died without unmounting leaves a dead mount point behind.
      await new Promise<void>((r) => execFile('fusermount3', ['-uz', mountDir], () => r()));
      rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
    },
  };
  const startChunkserver = async (i: number): Promise<TestChunkserver> => {
    const dataDir = join(dir, `cs${i}`);
    const args = ['chunkserver', '--data', dataDir, '--master', master.addr, '--port', '0', '--heartbeat-ms', hb, '--log-file', join(dir, `cs${i}.log`), '--secret-file', join(dir, 'master', 'cluster.secret')];
    const proc = await spawnGfs(`cs${i}`, args, dir);
    return {
      dataDir,
      proc,
      stop: () => signalAndWait(proc.proc, 'SIGTERM'),
      kill: () => signalAndWait(proc.proc, 'SIGKILL'),
    };
  };
  cluster.restartWhole = async () => {
    if (cluster.mount) await cluster.mount.unmount();
    await Promise.all(chunkservers.map((cs) => cs.stop()));
    await signalAndWait(master.proc, 'SIGTERM');
    const args = masterArgs.map((a, i) => (masterArgs[i - 1] === '--port' ? masterPort : a));
    master = await spawnGfs('master', args, dir);
    for (let i = 0; i < chunkservers.length; i++) chunkservers[i] = await startChunkserver(i);
    await waitForServers(client, chunkservers.length);
    await cluster.remount();
  };
  try {
    for (let i = 0; i < (opts.chunkservers ?? 3); i++) chunkservers.push(await startChunkserver(i));
    await waitForServers(client, chunkservers.length);
    if (opts.mount ?? true) await cluster.remount();
  } catch (err) {
    await cluster.stop();
    throw err;
  }
  return cluster;
}

/** Waits until the master has heard from `n` chunkservers (writes need the replicas). */
async function waitForServers(client: GfsClient, n: number): Promise<void> {
  const until = Date.now() + 20_000;
  for (;;) {
    try {
      const s = await client.clusterStatus();
      if (s.servers.filter((x) => x.state === 'alive').length >= n) return;
    } catch {
      // master still starting
    }
    if (Date.now() > until) throw new Error(`only some of ${n} chunkservers registered within 20 s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export interface ShResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs a bash script in a child process, bounded in time. `cwd` is entered by the script, not
 * by spawn: libuv's spawn waits synchronously for the child's chdir, and a chdir into our own
 * mount needs this very event loop to answer, a deadlock.
 */
export function sh(script: string, opts: { cwd?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<ShResult> {
  const full = opts.cwd ? `cd -- ${quote(opts.cwd)} && ${script}` : script;
  return new Promise((resolve) => {
    execFile(
      'bash',
      ['-c', full],
      { cwd: '/', timeout: opts.timeoutMs ?? 60_000, killSignal: 'SIGKILL', maxBuffer: 64 * 1024 * 1024, env: { ...process.env, LC_ALL: 'C', TZ: 'UTC', ...opts.env } },
      (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : -1) : 0;
        resolve({ code, stdout: String(stdout), stderr: String(stderr) + (err && code === -1 ? `\n${err.message}` : '') });
      },
    );
  });
}

export function quote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Like sh() but throws with the output when the script fails. */
export async function shOk(script: string, opts: { cwd?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<string> {
  const r = await sh(script, opts);
  if (r.code !== 0) throw new Error(`script failed (${r.code}): ${script}\n--- stdout\n${r.stdout.slice(-4000)}\n--- stderr\n${r.stderr.slice(-4000)}`);
  return r.stdout;
}
