// `gfs up` brings a cluster up, `gfs status` answers, Ctrl-C stops everything it started.
import { spawn, execFile } from 'node:child_process';
import { mkdtempSync, rmSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { CLI, waitFor } from '../helpers/proc-cluster.js';
import { MALLOC_ENV } from '../../src/common/malloc-tuning.js';

const run = promisify(execFile);

async function processesMentioning(text: string): Promise<string[]> {
  const { stdout } = await run('ps', ['-eo', 'pid=,args=']);
  return stdout
    .split('\n')
    .filter((l) => l.includes(text) && !l.includes('ps -eo'))
    .map((l) => l.trim());
}

describe('gfs up', () => {
  it('starts a master and three chunkservers, answers status, and stops cleanly on SIGINT', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gfs-up-'));
    const data = join(dir, 'data');
    const up = spawn(process.execPath, [CLI, 'up', '--no-mount', '--data', data, '--heartbeat-ms', '300'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    up.stdout.on('data', (b) => (out += b));
    up.stderr.on('data', (b) => (out += b));
    try {
      await waitFor(() => out.includes('press Ctrl-C'), 'gfs up to be ready', 60_000);
      expect(out).toMatch(/gfs: master 127\.0\.0\.1:\d+/);
      expect(out.match(/gfs: chunkserver-\d 127\.0\.0\.1:\d+/g)?.length).toBe(3);
      const addr = readFileSync(join(data, 'master.addr'), 'utf8').trim();

      const status = await waitFor(async () => {
        const env = { ...process.env, GFS_SECRET_FILE: join(data, 'master', 'client.key') };
        const { stdout } = await run(process.execPath, [CLI, 'status', '--json', '--master', addr], { timeout: 20_000, env });
        const s = JSON.parse(stdout);
        return s.servers.filter((v: { state: string }) => v.state === 'alive').length === 3 ? s : undefined;
      }, 'three live chunkservers in gfs status', 30_000);
      expect(status.servers).toHaveLength(3);
      // gfs up itself, the master and three chunkservers
      const procs = await processesMentioning(data);
      expect(procs.length).toBe(5);
      // Its daemons start with the malloc settings (glibc reads them only at a process's start).
      const daemons = procs.filter((l) => / (master|chunkserver) /.test(l));
      expect(daemons.length).toBe(4);
      for (const line of daemons) {
        const environ = readFileSync(`/proc/${line.split(/\s+/)[0]}/environ`, 'utf8').split('\0');
        for (const [k, v] of Object.entries(MALLOC_ENV)) expect(environ, line).toContain(`${k}=${v}`);
      }

      const exited = new Promise<number | null>((res) => up.once('exit', (code) => res(code)));
      up.kill('SIGINT');
      expect(await exited).toBe(0);
      expect(out).toContain('gfs: stopped');
      expect(await processesMentioning(data)).toEqual([]);
    } finally {
      up.kill('SIGKILL');
      for (const line of await processesMentioning(data)) process.kill(Number(line.split(/\s+/)[0]), 'SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('gfs up with the mount (what npm start runs)', () => {
  it('mounts, keeps data across a stop and a new start, and leaves no process or mount behind', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gfs-up-mnt-'));
    const data = join(dir, 'data');
    const mnt = join(dir, 'mnt');
    const start = async () => {
      const up = spawn(process.execPath, [CLI, 'up', '--data', data, '--mount', mnt, '--heartbeat-ms', '300'], { stdio: ['ignore', 'pipe', 'pipe'], cwd: dir });
      let out = '';
      up.stdout.on('data', (b) => (out += b));
      up.stderr.on('data', (b) => (out += b));
      await waitFor(() => out.includes('press Ctrl-C'), 'gfs up to be ready', 60_000);
      expect(out).toContain(`gfs: mounted at ${mnt}`);
      return {
        up,
        stop: async () => {
          const exited = new Promise<number | null>((res) => up.once('exit', (code) => res(code)));
          up.kill('SIGINT');
          expect(await exited).toBe(0);
        },
      };
    };
    try {
      const first = await start();
      await run('bash', ['-c', `mkdir -p ${mnt}/a/b && echo kept > ${mnt}/a/b/f && head -c 3000000 /dev/urandom > ${mnt}/a/r && md5sum < ${mnt}/a/r > ${dir}/sum`], { timeout: 60_000 });
      await first.stop();
      const { stdout: mounts } = await run('cat', ['/proc/mounts']);
      expect(mounts).not.toContain(mnt);
      expect(await processesMentioning(data)).toEqual([]);

      const second = await start();
      const { stdout } = await run('bash', ['-c', `cat ${mnt}/a/b/f && md5sum < ${mnt}/a/r`], { timeout: 60_000 });
      expect(stdout).toBe(`kept\n${readFileSync(join(dir, 'sum'), 'utf8')}`);
      await second.stop();
      expect(await processesMentioning(data)).toEqual([]);
    } finally {
      for (const line of await processesMentioning(data)) process.kill(Number(line.split(/\s+/)[0]), 'SIGKILL');
      await run('fusermount3', ['-uz', mnt]).catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
