// An in-process gfs cluster for end-to-end tests: a master and N chunkservers on 127.0.0.1
// with ephemeral ports and temp dirs, a GfsClient, and (optionally) a FUSE mount of it.
// Everything touching the mount from a test should run in a child process (shell tools):
// the mount is served by this process's event loop, so a synchronous fs call here would
// deadlock, and async ones would occupy libuv threads the chunkservers need for disk I/O.
import { execFile } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startChunkserver, type ChunkserverHandle } from '../../src/chunkserver/chunkserver.js';
import { GfsClient } from '../../src/client/client.js';
import { startMaster, type MasterHandle } from '../../src/master/master.js';
import { mountGfs, type MountHandle, type MountOptions } from '../../src/fuse/mount.js';

export interface TestChunkserver {
  dataDir: string;
  handle: ChunkserverHandle;
  stop(): Promise<void>;
  /** No in-process SIGKILL exists; stopping without waiting for a flush is the closest. */
  kill(): Promise<void>;
}

export interface TestCluster {
  dir: string;
  masterAddr: string;
  master: MasterHandle;
  mountDir: string;
  mount?: MountHandle;
  client: GfsClient;
  chunkservers: TestChunkserver[];
  /** Mounts (again) at mountDir, e.g. after unmount(). */
  remount(opts?: MountOptions): Promise<MountHandle>;
  stop(): Promise<void>;
}

export interface TestClusterOptions {
  chunkservers?: number;
  mount?: boolean;
  chunkSize?: number;
  mountOptions?: MountOptions;
}

export async function startTestCluster(opts: TestClusterOptions = {}): Promise<TestCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'gfs-e2e-'));
  chmodSync(dir, 0o755); // non-root test users must reach the mount point
  const mountDir = join(dir, 'mnt');
  const master = await startMaster({ port: 0, dataDir: join(dir, 'master'), chunkSize: opts.chunkSize });
  const chunkservers: TestChunkserver[] = [];
  const client = new GfsClient({ master: master.addr });
  const cluster: TestCluster = {
    dir,
    masterAddr: master.addr,
    master,
    mountDir,
    client,
    chunkservers,
    async remount(mopts) {
      cluster.mount = await mountGfs(client, mountDir, { ...opts.mountOptions, ...mopts });
      return cluster.mount;
    },
    async stop() {
      if (cluster.mount) await cluster.mount.unmount().catch(() => undefined);
      await client.close().catch(() => undefined);
      await Promise.allSettled(chunkservers.map((c) => c.stop()));
      await master.stop().catch(() => undefined);
      rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
    },
  };
  try {
    for (let i = 0; i < (opts.chunkservers ?? 3); i++) {
      const dataDir = join(dir, `cs${i}`);
      const handle = await startChunkserver({ dataDir, master: master.addr, port: 0 });
      let stopped: Promise<void> | undefined;
      const stop = () => (stopped ??= handle.stop());
      chunkservers.push({ dataDir, handle, stop, kill: stop });
    }
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
      const alive = s.servers.filter((x) => String(x.state).toLowerCase().includes('alive')).length;
      if (alive >= n) return;
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
