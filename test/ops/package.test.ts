// The packed tarball installs globally and runs: `npm pack`, `npm install -g` into a temp
// prefix, then `gfs up` from that installation (without the mount; and with it when FUSE is
// usable here, which builds the patched fuse-native on the first mount).
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/proc-cluster.js';
import { fetchText, isRoot, scrape, sum } from './helpers.js';

const run = promisify(execFile);
const ROOT = resolve('.');

function fuseUsable(): boolean {
  return isRoot() && existsSync('/dev/fuse');
}

describe('npm pack + npm install -g', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gfs-pkg-'));
  const prefix = join(dir, 'prefix');
  const gfs = join(prefix, 'bin', 'gfs');
  const running: ChildProcess[] = [];

  beforeAll(async () => {
    const { stdout } = await run('npm', ['pack', '--pack-destination', dir, '--loglevel=error'], { cwd: ROOT, timeout: 120_000 });
    const tgz = readdirSync(dir).find((f) => /^gfs-.*\.tgz$/.test(f));
    expect(tgz, `npm pack output: ${stdout}`).toBeDefined();
    await run('npm', ['install', '-g', '--prefix', prefix, '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error', join(dir, tgz!)], {
      cwd: dir,
      timeout: 8 * 60_000,
    });
  }, 10 * 60_000);

  afterAll(async () => {
    for (const p of running) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('ships dist, proto, scripts and patches', () => {
    const pkg = join(prefix, 'lib', 'node_modules', 'gfs');
    for (const f of [
      'dist/cli/main.js',
      'dist/master/status-page.js',
      'proto/gfs.proto',
      'scripts/build-fuse-native.sh',
      'scripts/systemd/gfs-master.service',
      'scripts/provision/node.sh',
      'patches/fuse-native+2.2.6.patch',
    ]) {
      expect(existsSync(join(pkg, f)), f).toBe(true);
    }
    expect(existsSync(join(pkg, 'node_modules', 'prom-client'))).toBe(true);
    expect(existsSync(join(pkg, 'node_modules', 'playwright-core')), 'devDependencies are not installed').toBe(false);
  });

  async function up(args: string[]): Promise<{ proc: ChildProcess; out: () => string; data: string }> {
    const data = mkdtempSync(join(dir, 'data-'));
    const proc = spawn(gfs, ['up', '--data', data, '--heartbeat-ms', '300', ...args], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    running.push(proc);
    let out = '';
    proc.stdout!.on('data', (b) => (out += b));
    proc.stderr!.on('data', (b) => (out += b));
    const exited = new Promise<void>((res) => proc.once('exit', () => res()));
    await Promise.race([
      waitFor(() => out.includes('press Ctrl-C'), 'gfs up to be ready', 5 * 60_000),
      exited.then(() => {
        throw new Error(`gfs up exited early:\n${out}`);
      }),
    ]);
    return { proc, out: () => out, data };
  }

  async function stop(proc: ChildProcess): Promise<number | null> {
    const code = new Promise<number | null>((res) => proc.once('exit', (c) => res(c)));
    proc.kill('SIGINT');
    return code;
  }

  it('`gfs up --no-mount` from the installation runs a cluster with its status page', async () => {
    const { proc, out, data } = await up(['--no-mount']);
    const url = /gfs: status page (http:\/\/\S+?)\/? /.exec(out())?.[1];
    expect(url, out()).toBeDefined();
    const addr = readFileSync(join(data, 'master.addr'), 'utf8').trim();
    // A cluster with a credential (the security work) hands it to its tools through a file.
    const secret = ['client.key', 'cluster.secret'].map((f) => join(data, 'master', f)).find((f) => existsSync(f));
    const env = { ...process.env, ...(secret ? { GFS_SECRET_FILE: secret } : {}) };
    const { stdout } = await run(gfs, ['status', '--json', '--master', addr], { timeout: 30_000, env });
    expect(JSON.parse(stdout).servers).toHaveLength(3);
    const st = await waitFor(async () => {
      const s = JSON.parse((await fetchText(`${url}/api/status`)).body);
      return s.serverStates.alive === 3 ? s : undefined;
    }, 'three alive servers on /api/status', 30_000);
    expect(st.master).toBe(addr);
    expect((await fetchText(`${url}/`)).body).toContain('<title>gfs master</title>');
    expect(await stop(proc)).toBe(0);
    expect(out()).toContain('gfs: stopped');
  });

  it('`gfs up` from the installation mounts (building the patched fuse-native on first mount)', async () => {
    expect(fuseUsable(), 'this test needs root and /dev/fuse').toBe(true);
    const mnt = join(dir, 'mnt');
    const { proc, out } = await up(['--mount', mnt]);
    expect(out()).toContain(`gfs: mounted at ${mnt}`);
    // The first mount built the patched fuse-native inside the installation.
    expect(existsSync(join(prefix, 'lib/node_modules/gfs/node_modules/fuse-native/build/Release/.gfs-build-stamp'))).toBe(true);
    writeFileSync(join(mnt, 'hello.txt'), 'hello from an installed gfs\n');
    expect(readFileSync(join(mnt, 'hello.txt'), 'utf8')).toBe('hello from an installed gfs\n');
    const metrics = /gfs: mount metrics (http:\/\/\S+)\/metrics/.exec(out())?.[1];
    expect(metrics, out()).toBeDefined();
    const m = await scrape(metrics!);
    expect(sum(m, 'gfs_fuse_op_duration_seconds_count', { op: 'write' })).toBeGreaterThan(0);
    expect(sum(m, 'gfs_rpc_client_duration_seconds_count', { service: 'master' })).toBeGreaterThan(0);
    expect(await stop(proc)).toBe(0);
  });
});
