// A real cluster for integration tests: master and chunkservers as separate `gfs` processes on
// 127.0.0.1 with ephemeral ports and temp dirs (the built CLI in dist/, as users run it).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, openSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import { clientChannel } from '../../src/common/auth.js';
import { clientKeysOf, keysOf, readCredential } from '../../src/common/cluster-secret.js';
import { CHANNEL_OPTIONS } from '../../src/common/grpc-options.js';

export const CLI = resolve('dist/cli/main.js');

/** Cluster secret file of every daemon address started here (for raw gRPC stubs in tests). */
const secretOfAddr = new Map<string, string>();

/**
 * Channel credentials + options for a raw gRPC stub to a daemon started by this helper: it
 * presents the cluster's credential (as `role`), as every gfs process does (src/common/auth.ts).
 */
export function stubChannel(addr: string, role: 'server' | 'client' = 'server'): [grpc.ChannelCredentials, grpc.ClientOptions] {
  const port = addr.slice(addr.lastIndexOf(':'));
  // The daemon most recently started on that port, whatever name reaches it (127.0.0.1 for
  // 0.0.0.0): ports are reused by later clusters of the same test file.
  const file = [...secretOfAddr].reverse().find(([a]) => a.endsWith(port))?.[1];
  const c = file ? readCredential(file) : undefined;
  const keys = c ? (role === 'server' ? keysOf(c) : clientKeysOf(c)) : undefined;
  const { creds, options } = clientChannel(keys ? { keys, role } : undefined, CHANNEL_OPTIONS);
  return [creds, options];
}
const READY_MS = 30_000;

export interface Proc {
  name: string;
  proc: ChildProcess;
  addr: string;
  args: string[];
  /** "http://127.0.0.1:PORT" of its status page / metrics (daemons open one unless --no-http). */
  http?: string;
}

export interface ProcCluster {
  dir: string;
  master: Proc;
  /** The cluster secret the master generated (given to every chunkserver). */
  secretFile: string;
  /** The client key beside it: `new GfsClient({ master, secretFile: c.clientKeyFile })`. */
  clientKeyFile: string;
  chunkservers: Proc[];
  /** Starts one more chunkserver (or restarts one with the data dir of a killed one). */
  addChunkserver(dataDir?: string, opts?: ChunkserverSpawnOptions): Promise<Proc>;
  /**
   * SIGKILLs the master (if it still runs) and starts it again on the same port and data
   * dir; `master` is the new process afterwards. Resolves with the milliseconds from spawn
   * to its ready line.
   */
  restartMaster(): Promise<number>;
  kill(p: Proc, signal?: NodeJS.Signals): Promise<void>;
  stop(): Promise<void>;
}

export interface ProcClusterOptions {
  chunkservers?: number;
  chunkSize?: number;
  heartbeatMs?: number;
  /** Extra `gfs master` flags (e.g. --sync-mode, --checkpoint-bytes). */
  masterArgs?: string[];
  /** Extra `gfs chunkserver` flags for every chunkserver (e.g. --scrub-idle-ms). */
  chunkserverArgs?: string[];
}

export interface ChunkserverSpawnOptions {
  /** Command the chunkserver runs under, e.g. ['ip', 'netns', 'exec', 'ns1']. */
  prefix?: string[];
  /** Listen address (default 127.0.0.1). */
  host?: string;
  /** Master address as this chunkserver reaches it (default the master's own). */
  master?: string;
  /** Flags after the usual ones. */
  extraArgs?: string[];
}

export function spawnGfs(name: string, args: string[], dir: string, prefix: string[] = []): Promise<Proc> {
  const err = openSync(join(dir, `${name}.stderr`), 'a');
  const cmd = [...prefix, process.execPath, CLI, ...args];
  const proc = spawn(cmd[0]!, cmd.slice(1), { stdio: ['ignore', 'pipe', err] });
  closeSync(err);
  return new Promise((resolveP, reject) => {
    let out = '';
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`${name} not ready in ${READY_MS} ms`));
    }, READY_MS);
    proc.stdout!.on('data', (b: Buffer) => {
      out += b.toString();
      const m = /gfs: (?:master|chunkserver) listening on (\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        const http = /gfs: (?:master|chunkserver) http on (\S+)/.exec(out)?.[1];
        resolveP({ name, proc, addr: m[1]!, args, http });
      }
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited with ${code} before it was ready; stderr in ${dir}`));
    });
  });
}

export async function startProcCluster(o: ProcClusterOptions = {}): Promise<ProcCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'gfs-it-'));
  const hb = String(o.heartbeatMs ?? 300);
  const masterArgs = ['master', '--data', join(dir, 'master'), '--port', '0', '--heartbeat-ms', hb, '--log-file', join(dir, 'master.log')];
  if (o.chunkSize) masterArgs.push('--chunk-size', String(o.chunkSize));
  masterArgs.push(...(o.masterArgs ?? []));
  const master = await spawnGfs('master', masterArgs, dir);
  const secretFile = join(dir, 'master', 'cluster.secret');
  secretOfAddr.delete(master.addr);
  secretOfAddr.set(master.addr, secretFile);
  const all: Proc[] = [master];
  let n = 0;
  const addChunkserver = async (dataDir?: string, so: ChunkserverSpawnOptions = {}) => {
    n++;
    const data = dataDir ?? join(dir, `cs${n}`);
    const name = `cs${n}`;
    const args = ['chunkserver', '--data', data, '--master', so.master ?? master.addr, '--port', '0', '--heartbeat-ms', hb, '--log-file', join(dir, `${name}.log`), '--secret-file', join(dir, 'master', 'cluster.secret')];
    if (so.host) args.push('--host', so.host);
    args.push(...(o.chunkserverArgs ?? []), ...(so.extraArgs ?? []));
    const p = await spawnGfs(name, args, dir, so.prefix);
    secretOfAddr.delete(p.addr);
    secretOfAddr.set(p.addr, secretFile);
    all.push(p);
    return p;
  };
  const chunkservers: Proc[] = [];
  for (let i = 0; i < (o.chunkservers ?? 3); i++) chunkservers.push(await addChunkserver());
  const kill = (p: Proc, signal: NodeJS.Signals = 'SIGKILL') =>
    new Promise<void>((res) => {
      if (p.proc.exitCode !== null || p.proc.signalCode !== null) return res();
      p.proc.once('exit', () => res());
      p.proc.kill(signal);
    });
  const cluster: ProcCluster = {
    dir,
    master,
    secretFile: join(dir, 'master', 'cluster.secret'),
    clientKeyFile: join(dir, 'master', 'client.key'),
    chunkservers,
    addChunkserver,
    async restartMaster() {
      const old = cluster.master;
      await kill(old, 'SIGKILL');
      const port = old.addr.slice(old.addr.lastIndexOf(':') + 1);
      const args = [...old.args];
      args[args.indexOf('--port') + 1] = port;
      const t0 = performance.now();
      const next = await spawnGfs('master', args, dir);
      secretOfAddr.delete(next.addr);
      secretOfAddr.set(next.addr, secretFile);
      const ms = performance.now() - t0;
      all[all.indexOf(old)] = next;
      cluster.master = next;
      return ms;
    },
    kill,
    async stop() {
      await Promise.all(all.map((p) => kill(p, 'SIGTERM')));
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return cluster;
}

/** Polls `fn` until it returns truthy or the time runs out (then throws with `what`). */
export async function waitFor<T>(fn: () => Promise<T> | T, what: string, timeoutMs = 20_000, everyMs = 100): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
