// The file systems under test, brought up and torn down by the benchmark:
// - gfs: `gfs up --data <tmp>/data --mount <tmp>/mnt` (master + 3 chunkservers + mount, goal 3,
//   loopback) as a child process; ready when it prints "gfs: mounted at DIR"; stopped with
//   SIGINT (what Ctrl-C does), and checked for leftovers (processes, mount).
// - moosefs: ../shared/bench/peer-moosefs.sh up|down (MooseFS from Debian's packages, 3
//   chunkservers, goal 3, loopback, mounted at /tmp/mfs-peer/mnt).
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { ClientOptions } from '../client/client.js';
import { CLI_PATH } from '../cli/child-process.js';
import { MOUNTED_RE } from '../cli/ready-line.js';
import { metricsEndpoints } from './metrics-scrape.js';
import { childrenOf, readProc, type Watched } from './telemetry.js';

const run = promisify(execFile);

export interface SystemUnderTest {
  name: 'gfs' | 'moosefs';
  mount: string;
  /** Where its daemons keep their data (the disk under it is watched, disk-writes.ts). */
  dataDir: string;
  /** gfs only: how the client-library experiments reach the cluster. */
  client?: ClientOptions;
  /** Seconds from start to a usable mount. */
  upSeconds: number;
  processes(): Watched[];
  /** /metrics URL per process label (gfs daemons that announce one). */
  metrics: Record<string, string>;
  down(): Promise<void>;
}

export type Log = (msg: string) => void;

const UP_TIMEOUT_MS = 120_000;
const DOWN_TIMEOUT_MS = 90_000;

export function isMounted(dir: string): boolean {
  try {
    return readFileSync('/proc/mounts', 'utf8')
      .split('\n')
      .some((l) => l.split(' ')[1] === dir.replace(/ /g, '\\040'));
  } catch {
    return false;
  }
}

function alive(pid: number): boolean {
  const p = readProc(pid);
  if (!p) return false;
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function waitExit(proc: ChildProcess, ms: number): Promise<boolean> {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve(true);
  return new Promise((res) => {
    const timer = setTimeout(() => res(false), ms);
    proc.once('exit', () => {
      clearTimeout(timer);
      res(true);
    });
  });
}

function gfsLabel(argv: string[]): string {
  // argv: node .../main.js <role> ...
  const role = argv[2] ?? '?';
  if (role === 'chunkserver') {
    const i = argv.indexOf('--data');
    const m = i >= 0 ? /cs(\d+)$/.exec(argv[i + 1] ?? '') : null;
    return `chunkserver-${m ? m[1] : '?'}`;
  }
  return role;
}

/** Starts `gfs up` in `dir` and resolves once it is mounted. */
export async function startGfs(dir: string, log: Log): Promise<SystemUnderTest> {
  const data = join(dir, 'data');
  const mount = join(dir, 'mnt');
  mkdirSync(data, { recursive: true });
  const upLog = join(dir, 'gfs-up.out');
  const logStream = createWriteStream(upLog);
  const t0 = performance.now();
  // Own process group: a terminal Ctrl-C reaches only the benchmark, which then stops `gfs up`
  // with exactly one SIGINT (a second one would make it exit without stopping its children).
  const up = spawn(process.execPath, [CLI_PATH, 'up', '--data', data, '--mount', mount, '--chunkservers', '3'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let out = '';
  up.stdout!.on('data', (b: Buffer) => {
    out += b.toString();
    logStream.write(b);
  });
  up.stderr!.on('data', (b: Buffer) => logStream.write(b));

  const ready = await new Promise<RegExpExecArray>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`gfs up did not mount within ${UP_TIMEOUT_MS / 1000} s (see ${upLog})`)), UP_TIMEOUT_MS);
    const check = () => {
      const m = MOUNTED_RE.exec(out);
      if (m) {
        clearTimeout(timer);
        up.stdout!.off('data', check);
        up.off('exit', onExit);
        resolve(m);
      }
    };
    const onExit = (code: number | null, signal: string | null) => {
      clearTimeout(timer);
      reject(new Error(`gfs up exited before mounting (code ${code}, signal ${signal}); output:\n${out.trim()}\nlogs: ${join(data, 'logs')}`));
    };
    up.stdout!.on('data', check);
    up.once('exit', onExit);
  }).catch(async (err: unknown) => {
    await stopUp(up, mount, [], log);
    throw err;
  });
  const masterAddr = /^gfs: master (\S+)/m.exec(out)?.[1];
  // The credential a client presents (issue 7): the client key `gfs up` announces, if any.
  const clientKey = /client key (\S+)/.exec(out)?.[1] ?? [join(data, 'master', 'client.key')].find((f) => existsSync(f));
  // The daemons are children of `gfs up`; remember their pids (for telemetry and for the
  // leftover check at the end).
  const kids: Watched[] = childrenOf(up.pid!).map((c) => ({ label: gfsLabel(c.argv), pid: c.pid }));
  const upSeconds = (performance.now() - t0) / 1000;
  log(`gfs up: mounted at ${ready[1]} in ${upSeconds.toFixed(1)} s; master ${masterAddr}; pids ${kids.map((k) => `${k.label}=${k.pid}`).join(' ')}`);
  return {
    name: 'gfs',
    mount,
    dataDir: data,
    client: masterAddr ? { master: masterAddr, ...(clientKey ? { secretFile: clientKey } : {}) } : undefined,
    upSeconds,
    processes: () => kids,
    metrics: metricsEndpoints(out),
    down: async () => {
      await stopUp(up, mount, kids, log);
      logStream.end();
    },
  };
}

async function stopUp(up: ChildProcess, mount: string, kids: Watched[], log: Log): Promise<void> {
  if (up.exitCode === null && up.signalCode === null) {
    up.kill('SIGINT');
    if (!(await waitExit(up, DOWN_TIMEOUT_MS))) {
      log(`gfs up (pid ${up.pid}) did not stop within ${DOWN_TIMEOUT_MS / 1000} s after SIGINT; SIGKILL`);
      up.kill('SIGKILL');
      await waitExit(up, 10_000);
    }
  }
  // No leftovers: every daemon gone, nothing mounted.
  const left = kids.filter((k) => alive(k.pid));
  for (const k of left) {
    log(`leftover ${k.label} (pid ${k.pid}) after gfs up stopped; SIGKILL`);
    try {
      process.kill(k.pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  if (left.length) await sleep(500);
  if (isMounted(mount)) {
    log(`leftover mount at ${mount}; unmounting`);
    await run('fusermount', ['-u', '-z', mount]).catch(() => run('umount', ['-l', mount]).catch(() => undefined));
  }
  if (left.length || isMounted(mount)) throw new Error(`gfs up left processes or a mount behind (${left.map((k) => k.label).join(', ') || mount})`);
}

/** MooseFS through the shared peer script. */
export async function startMoosefs(script: string, log: Log): Promise<SystemUnderTest> {
  const root = process.env.MFS_PEER_ROOT ?? '/tmp/mfs-peer';
  const t0 = performance.now();
  try {
    const { stdout } = await run('bash', [script, 'up'], { maxBuffer: 1 << 24 });
    log(stdout.trim().split('\n').slice(-2).join(' | '));
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    throw new Error(`peer-moosefs.sh up failed: ${(e.stderr || e.stdout || e.message).trim()}`);
  }
  const upSeconds = (performance.now() - t0) / 1000;
  const names = ['master', 'cs1', 'cs2', 'cs3', 'mount'];
  const procs: Watched[] = [];
  for (const n of names) {
    const f = join(root, 'pids', `${n}.pid`);
    if (!existsSync(f)) continue;
    const pid = Number(readFileSync(f, 'utf8').trim());
    if (pid > 0) procs.push({ label: n.replace(/^cs(\d)$/, 'chunkserver-$1'), pid });
  }
  log(`moosefs up: mounted at ${join(root, 'mnt')} in ${upSeconds.toFixed(1)} s; pids ${procs.map((k) => `${k.label}=${k.pid}`).join(' ')}`);
  return {
    name: 'moosefs',
    mount: join(root, 'mnt'),
    dataDir: root,
    upSeconds,
    processes: () => procs,
    metrics: {},
    down: async () => {
      try {
        await run('bash', [script, 'down'], { maxBuffer: 1 << 24 });
      } catch (err) {
        const e = err as { stdout?: string; stderr?: string; message: string };
        throw new Error(`peer-moosefs.sh down failed: ${(e.stderr || e.stdout || e.message).trim()}`);
      }
    },
  };
}
