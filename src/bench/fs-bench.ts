// File-system workloads on a mounted directory (any file system: gfs, MooseFS, local disk):
// - the shared fixed workload script `fsbench.sh MOUNTDIR LABEL` (fio sequential/random/
//   parallel, 5,000-file tar -x / find / ls -lR / cat / rm -rf, dbench), parsed from its
//   "LABEL metric value unit" lines as they stream, so each of its steps is a telemetry phase;
// - `git clone --no-hardlinks` of a generated local repository with a few thousand files;
// - quick versions for --smoke (dd 16 MiB write/read, a 200-file tar -x, ls -lR, cat, rm -rf).
import { execFile, execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';

const exec = promisify(execFile);

export type MetricValue = { value: number | string; unit: string };
export type Metrics = Record<string, MetricValue>;

/** Workload boundaries, for the telemetry phases. `end(name)` names the phase as it closes. */
export interface PhaseHooks {
  begin(workload: string): void;
  end(rename?: string): void;
}

export const CACHE_DIR = process.env.GFS_BENCH_CACHE ?? '/tmp/gfs-bench-cache';

const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** Runs a shell command line; resolves with its wall time in seconds; throws with stderr on failure. */
async function timed(cmd: string): Promise<number> {
  const t0 = performance.now();
  try {
    await exec('bash', ['-c', `set -o pipefail; ${cmd}`], { maxBuffer: 1 << 26 });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`${cmd}: ${(e.stderr || e.message).trim().split('\n').slice(-3).join(' ')}`);
  }
  return (performance.now() - t0) / 1000;
}

export function dropCaches(): boolean {
  try {
    execFileSync('sync');
    writeFileSync('/proc/sys/vm/drop_caches', '3');
    return true;
  } catch {
    return false;
  }
}

const r1 = (v: number, d = 1) => Number(v.toFixed(d));

// ---------------------------------------------------------------------------- fsbench.sh

/** fsbench.sh metric -> the workload (telemetry phase) that produced it. */
const FSBENCH_PHASE: Record<string, string> = {
  seq_write_1M: 'seq_write',
  seq_read_1M: 'seq_read',
  integrity_512M: 'sha256 512M',
  rand_read_4k_4j: 'rand_read_4k',
  par_write_4x128M: 'par_write',
  small_create_s: 'tar -x',
  small_find_s: 'find',
  small_lsR_s: 'ls -lR',
  small_cat_s: 'cat',
  small_rm_s: 'rm -rf',
  dbench_4p: 'dbench',
};

export async function runFsbench(
  script: string,
  mount: string,
  label: string,
  hooks: PhaseHooks,
  log: (line: string) => void,
): Promise<{ metrics: Metrics; notes: string[] }> {
  const metrics: Metrics = {};
  const notes: string[] = [];
  // Own process group, so an abort can stop fio/dbench with it.
  const child = spawn('bash', [script, mount, label], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  activeGroups.add(child.pid!);
  let stderr = '';
  child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
  // One phase per fsbench step: each step ends when its metric line arrives.
  hooks.begin('fsbench');
  const lines = createInterface({ input: child.stdout! });
  for await (const line of lines) {
    if (line.startsWith('# ---')) break; // summary table follows; we print our own
    if (line.startsWith('#')) {
      notes.push(line.replace(/^# ?/, ''));
      log(line);
      continue;
    }
    const parts = line.trim().split(/\s+/);
    if (parts.length !== 4 || parts[0] !== label) continue;
    const [, name, raw, unit] = parts as [string, string, string, string];
    const num = Number(raw);
    metrics[name] = { value: raw === 'NaN' ? NaN : Number.isFinite(num) ? num : raw, unit };
    log(line);
    const phase = FSBENCH_PHASE[name];
    if (phase) {
      hooks.end(phase);
      hooks.begin('fsbench');
    }
  }
  hooks.end('fsbench:other');
  const code = await new Promise<number | null>((res) => (child.exitCode !== null ? res(child.exitCode) : child.once('exit', (c) => res(c))));
  activeGroups.delete(child.pid!);
  if (code !== 0) throw new Error(`fsbench.sh exited with ${code}: ${stderr.trim().split('\n').slice(-3).join(' ')}`);
  if (stderr.trim()) notes.push(...stderr.trim().split('\n'));
  return { metrics, notes };
}

/** Process groups of running workload scripts (killed on abort). */
export const activeGroups = new Set<number>();

export function killActiveWorkloads(): void {
  for (const pgid of activeGroups) {
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  activeGroups.clear();
}

// ---------------------------------------------------------------------------- git clone

export interface RepoSpec {
  files: number;
  commits: number;
}

/** A small deterministic PRNG (xorshift32): the same repository on every machine. */
function prng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 0x100000000;
  };
}

const WORDS = 'const let return function import export from await async if else for while new this value buffer chunk master server client read write open close'.split(' ');

function sourceText(rand: () => number, bytes: number, name: string): string {
  let s = `// ${name}\n`;
  while (s.length < bytes) {
    const n = 3 + Math.floor(rand() * 9);
    const line: string[] = [];
    for (let i = 0; i < n; i++) line.push(WORDS[Math.floor(rand() * WORDS.length)]!);
    s += `${'  '.repeat(Math.floor(rand() * 3))}${line.join(' ')};\n`;
  }
  return s;
}

/**
 * A local git repository with `files` small files in nested directories, built up over
 * `commits` commits (deterministic content and dates), packed. Generated once into the cache.
 */
export async function ensureRepo(spec: RepoSpec, log: (m: string) => void): Promise<{ path: string; files: number }> {
  const name = `repo-${spec.files}f-${spec.commits}c`;
  const path = join(CACHE_DIR, name);
  const marker = join(path, '.git', 'gfs-bench-complete');
  if (existsSync(marker)) return { path, files: Number(readFileSync(marker, 'utf8')) };
  log(`generating ${path} (${spec.files} files, ${spec.commits} commits; once)`);
  mkdirSync(CACHE_DIR, { recursive: true });
  const tmp = mkdtempSync(join(CACHE_DIR, `${name}.tmp.`));
  const rand = prng(0x9e3779b9);
  const paths: string[] = [];
  for (let i = 0; i < spec.files; i++) {
    const a = i % 15;
    const b = Math.floor(i / 15) % 10;
    const depth = i % 3;
    const dir = ['src', `mod${String(a).padStart(2, '0')}`, `pkg${b}`, ...(depth ? [`sub${depth}`] : [])].join('/');
    paths.push(`${dir}/file${String(i).padStart(5, '0')}.ts`);
  }
  const git = (args: string[], date?: string) =>
    exec('git', ['-c', 'user.name=gfs bench', '-c', 'user.email=bench@localhost', '-c', 'init.defaultBranch=main', '-c', 'gc.auto=0', ...args], {
      cwd: tmp,
      maxBuffer: 1 << 26,
      env: { ...process.env, ...(date ? { GIT_AUTHOR_DATE: date, GIT_COMMITTER_DATE: date } : {}) },
    });
  await git(['init', '-q']);
  const per = Math.ceil(spec.files / spec.commits);
  for (let c = 0; c < spec.commits; c++) {
    for (let i = c * per; i < Math.min(spec.files, (c + 1) * per); i++) {
      const p = join(tmp, paths[i]!);
      mkdirSync(join(p, '..'), { recursive: true });
      writeFileSync(p, sourceText(rand, 200 + Math.floor(rand() * 3000), paths[i]!));
    }
    // Later commits also edit some earlier files, like real history.
    for (let k = 0; k < Math.min(c * per, 40); k++) {
      const i = Math.floor(rand() * c * per);
      writeFileSync(join(tmp, paths[i]!), sourceText(rand, 200 + Math.floor(rand() * 3000), `${paths[i]} v${c}`));
    }
    await git(['add', '-A']);
    await git(['commit', '-q', '-m', `commit ${c + 1}`], `2026-01-01T00:${String(c).padStart(2, '0')}:00Z`);
  }
  await git(['gc', '-q']);
  const { stdout } = await git(['ls-files']);
  const files = stdout.split('\n').filter(Boolean).length;
  writeFileSync(join(tmp, '.git', 'gfs-bench-complete'), String(files));
  rmSync(path, { recursive: true, force: true });
  renameSync(tmp, path);
  return { path, files };
}

/** `git clone --no-hardlinks` of the cached repository onto the mount: seconds and files/s. */
export async function gitClone(repo: { path: string; files: number }, mount: string, hooks: PhaseHooks): Promise<Metrics> {
  const dir = mkdtempSync(join(mount, 'bench-git.'));
  try {
    // The source side warm in the page cache: measure only the target.
    await timed(`cat ${q(repo.path)}/.git/objects/pack/* >/dev/null`);
    hooks.begin('git clone');
    const s = await timed(`git clone -q --no-hardlinks ${q(repo.path)} ${q(join(dir, 'clone'))}`);
    hooks.end();
    const n = Number((await exec('git', ['-C', join(dir, 'clone'), 'ls-files'], { maxBuffer: 1 << 26 })).stdout.split('\n').filter(Boolean).length);
    if (n !== repo.files) throw new Error(`git clone checked out ${n} files, expected ${repo.files}`);
    return { git_clone_s: { value: r1(s, 3), unit: 's' }, git_clone: { value: r1(repo.files / s, 0), unit: 'files/s' } };
  } finally {
    hooks.end();
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------- smoke versions

export interface QuickSpec {
  seqMiB: number;
  smallFiles: number;
}

function ensureQuickInputs(spec: QuickSpec): { big: string; bigSha: string; tar: string; tarSha: string } {
  const dir = join(CACHE_DIR, 'quick');
  mkdirSync(dir, { recursive: true });
  const big = join(dir, `seq-${spec.seqMiB}M.bin`);
  const rand = prng(12345);
  if (!existsSync(`${big}.sha256`)) {
    const b = Buffer.alloc(spec.seqMiB * 1024 * 1024);
    for (let i = 0; i < b.length; i += 4) b.writeUInt32LE(Math.floor(rand() * 0x100000000), i);
    writeFileSync(big, b);
    writeFileSync(`${big}.sha256`, createHash('sha256').update(b).digest('hex'));
  }
  const tar = join(dir, `small-${spec.smallFiles}x4096.tar`);
  if (!existsSync(`${tar}.sha256`)) {
    const src = mkdtempSync(join(dir, 'src.'));
    const h = createHash('sha256');
    const names: string[] = [];
    for (let i = 0; i < spec.smallFiles; i++) names.push(`small/d${i % 10}/f${String(i).padStart(5, '0')}`);
    names.sort();
    for (const n of names) {
      const b = Buffer.alloc(4096);
      for (let i = 0; i < b.length; i += 4) b.writeUInt32LE(Math.floor(rand() * 0x100000000), i);
      mkdirSync(join(src, n, '..'), { recursive: true });
      writeFileSync(join(src, n), b);
      h.update(b);
    }
    execFileSync('tar', ['-cf', tar, '-C', src, 'small']);
    writeFileSync(`${tar}.sha256`, h.digest('hex'));
    rmSync(src, { recursive: true, force: true });
  }
  return { big, bigSha: readFileSync(`${big}.sha256`, 'utf8'), tar, tarSha: readFileSync(`${tar}.sha256`, 'utf8') };
}

/** The --smoke stand-in for fsbench.sh: same metric names, tiny sizes, seconds not minutes. */
export async function quickFs(mount: string, spec: QuickSpec, hooks: PhaseHooks): Promise<Metrics> {
  const inp = ensureQuickInputs(spec);
  const m: Metrics = {};
  const run = mkdtempSync(join(mount, 'bench-quick.'));
  const step = async (name: string, cmd: string) => {
    hooks.begin(name);
    const s = await timed(cmd);
    hooks.end();
    return s;
  };
  try {
    const bytes = spec.seqMiB * 1024 * 1024;
    const big = join(run, 'big.dat');
    await timed(`cat ${q(inp.big)} >/dev/null`);
    m.drop_caches = { value: dropCaches() ? 1 : 0, unit: 'bool' };
    let s = await step('seq_write', `dd if=${q(inp.big)} of=${q(big)} bs=1M conv=fsync status=none`);
    m.seq_write_1M = { value: r1(bytes / 1e6 / s), unit: 'MB/s' };
    dropCaches();
    s = await step('seq_read', `dd if=${q(big)} of=/dev/null bs=1M status=none`);
    m.seq_read_1M = { value: r1(bytes / 1e6 / s), unit: 'MB/s' };
    dropCaches();
    const sha = (await exec('sha256sum', [big])).stdout.split(' ')[0];
    m.integrity_seq = { value: sha === inp.bigSha ? 'OK' : 'FAIL', unit: '-' };

    const n = spec.smallFiles;
    const sf = join(run, 'sf');
    mkdirSync(sf);
    await timed(`cat ${q(inp.tar)} >/dev/null`);
    s = await step('tar -x', `tar -xf ${q(inp.tar)} -C ${q(sf)}`);
    m.small_create_s = { value: r1(s, 3), unit: 's' };
    m.small_create = { value: r1(n / s, 0), unit: 'files/s' };
    dropCaches();
    s = await step('find', `test "$(find ${q(sf)} -type f | wc -l)" = ${n}`);
    m.small_find_s = { value: r1(s, 3), unit: 's' };
    dropCaches();
    s = await step('ls -lR', `ls -lR ${q(sf)} >/dev/null`);
    m.small_lsR_s = { value: r1(s, 3), unit: 's' };
    dropCaches();
    hooks.begin('cat');
    const t0 = performance.now();
    const { stdout } = await exec('bash', ['-c', `cd ${q(sf)} && find small -type f | LC_ALL=C sort | xargs cat | sha256sum`], { maxBuffer: 1 << 20 });
    s = (performance.now() - t0) / 1000;
    hooks.end();
    m.small_cat_s = { value: r1(s, 3), unit: 's' };
    m.small_cat = { value: r1(n / s, 0), unit: 'files/s' };
    m.integrity_small = { value: stdout.split(' ')[0] === inp.tarSha ? 'OK' : 'FAIL', unit: '-' };
    s = await step('rm -rf', `rm -rf ${q(sf)}`);
    m.small_rm_s = { value: r1(s, 3), unit: 's' };
    m.small_rm = { value: r1(n / s, 0), unit: 'files/s' };
    return m;
  } finally {
    hooks.end();
    rmSync(run, { recursive: true, force: true });
  }
}
