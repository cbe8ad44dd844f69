// Deployment files: the multi-machine Vagrantfile passes `vagrant validate` (Debian's vagrant
// + vagrant-libvirt, installed when root and missing), the systemd units pass
// `systemd-analyze verify`, the provisioning scripts parse, and role.sh writes the environment
// files that a daemon then starts from (flags > env > config file).
import { execFile, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MALLOC_ENV } from '../../src/common/malloc-tuning.js';
import { spawnGfs } from '../helpers/proc-cluster.js';
import { ensureDebianPackages, fetchText } from './helpers.js';

const run = promisify(execFile);
const ROOT = resolve('.');

describe('Vagrantfile', () => {
  let missing: string | undefined;
  beforeAll(() => {
    missing = ensureDebianPackages(['vagrant', 'vagrant-libvirt']);
  }, 20 * 60_000);

  it('passes `vagrant validate` with the libvirt provider', async () => {
    if (missing) throw new Error(`vagrant validate needs Debian's vagrant and vagrant-libvirt: ${missing}`);
    const home = mkdtempSync(join(tmpdir(), 'gfs-vagrant-home-'));
    try {
      const { stdout } = await run('vagrant', ['validate'], {
        cwd: ROOT,
        timeout: 120_000,
        env: { ...process.env, VAGRANT_HOME: home, VAGRANT_DEFAULT_PROVIDER: 'libvirt', VAGRANT_CHECKPOINT_DISABLE: '1' },
      });
      expect(stdout).toMatch(/validated successfully/);
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });

  it('defines one master, three chunkservers and a client, provisioned by scripts/provision', () => {
    const vf = readFileSync(join(ROOT, 'Vagrantfile'), 'utf8');
    expect(vf).toMatch(/define "master"/);
    expect(vf).toMatch(/define "client"/);
    expect(vf).toMatch(/CHUNKSERVERS = 3/);
    expect(vf).toMatch(/private_network/);
    for (const s of ['scripts/provision/node.sh', 'scripts/provision/role.sh']) {
      expect(vf).toContain(s);
      expect(existsSync(join(ROOT, s))).toBe(true);
    }
  });
});

describe('provisioning scripts and systemd units', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gfs-deploy-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('every provisioning script parses', () => {
    for (const f of readdirSync(join(ROOT, 'scripts/provision'))) {
      const r = spawnSync('bash', ['-n', join(ROOT, 'scripts/provision', f)], { encoding: 'utf8' });
      expect(r.status, `${f}: ${r.stderr}`).toBe(0);
    }
  });

  it('the units pass systemd-analyze verify', () => {
    expect(existsSync('/usr/bin/systemd-analyze'), 'systemd-analyze (Debian package systemd) is required').toBe(true);
    const units = join(dir, 'units');
    spawnSync('mkdir', ['-p', units]);
    const src = join(ROOT, 'scripts/systemd');
    copyFileSync(join(src, 'gfs-master.service'), join(units, 'gfs-master.service'));
    copyFileSync(join(src, 'gfs-chunkserver@.service'), join(units, 'gfs-chunkserver@1.service'));
    copyFileSync(join(src, 'gfs-mount@.service'), join(units, 'gfs-mount@mnt-gfs.service'));
    const r = spawnSync('systemd-analyze', ['verify', ...readdirSync(units).map((u) => join(units, u))], { encoding: 'utf8' });
    expect(r.status, r.stderr + r.stdout).toBe(0);
    expect(r.stderr).not.toMatch(/Unknown|bad unit|fatal/i);
  });

  it('each unit starts its daemon with the malloc settings of src/common/malloc-tuning.ts', () => {
    for (const u of ['gfs-master.service', 'gfs-chunkserver@.service', 'gfs-mount@.service']) {
      const text = readFileSync(join(ROOT, 'scripts/systemd', u), 'utf8');
      const set = new Map<string, string>();
      for (const m of text.matchAll(/^Environment=(.*)$/gm)) for (const kv of m[1]!.split(/\s+/)) set.set(kv.split('=')[0]!, kv.slice(kv.indexOf('=') + 1));
      for (const [k, v] of Object.entries(MALLOC_ENV)) expect(set.get(k), `${u}: ${k}`).toBe(v);
    }
  });

  it('role.sh writes the environment a daemon starts from (GFS_NO_SYSTEMD, as the netns tests would)', async () => {
    const etc = join(dir, 'etc');
    const env = { ...process.env, GFS_ETC: etc, GFS_NO_SYSTEMD: '1' };
    await run('bash', [join(ROOT, 'scripts/provision/role.sh'), 'master', '127.0.0.1'], { env });
    const vars = Object.fromEntries(
      readFileSync(join(etc, 'master.env'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => l.split('=') as [string, string]),
    );
    expect(vars).toMatchObject({ GFS_HOST: '127.0.0.1', GFS_PORT: '9000', GFS_HTTP_PORT: '9400' });
    // Start a master from that environment, overriding data dir and ports (flags > env).
    const data = join(dir, 'master');
    spawnSync('mkdir', ['-p', data]);
    const p = await spawnGfs('master', ['master', '--data', data, '--port', '0', '--http-port', '0', '--http-host', '127.0.0.1'], dir, ['env', ...Object.entries(vars).map(([k, v]) => `${k}=${v}`)]);
    try {
      expect(p.addr).toMatch(/^127\.0\.0\.1:\d+$/);
      expect(p.addr).not.toBe('127.0.0.1:9000');
      expect((await fetchText(`${p.http}/healthz`)).status).toBe(200);
    } finally {
      p.proc.kill('SIGTERM');
    }
    await run('bash', [join(ROOT, 'scripts/provision/role.sh'), 'chunkserver', '127.0.0.1', '127.0.0.1', '2'], { env });
    expect(readFileSync(join(etc, 'chunkserver-2.env'), 'utf8')).toMatch(/GFS_PORT=9101/);
  });
});
