// Data written through the mount survives an unmount and a fresh mount byte for byte; the
// stale-mount cleanup recognises a dead mount point.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { cleanStaleMount, isMountPoint } from '../../src/fuse/mount.js';
import { shOk, startTestCluster, type TestCluster } from './cluster.js';
import { CLI } from '../helpers/proc-cluster.js';

let c: TestCluster;
let LOCAL: string;

beforeAll(async () => {
  // Four chunkservers: after one is killed, the others can bring every chunk back to 3 copies.
  c = await startTestCluster({ chunkservers: 4, mount: true });
  LOCAL = mkdtempSync(join(tmpdir(), 'gfs-e2e-remount-'));
}, 60_000);

afterAll(async () => {
  await c?.stop();
  if (LOCAL) rmSync(LOCAL, { recursive: true, force: true });
});

describe('gfs mount: unmount and remount', () => {
  test('a 1 GiB file written with dd bs=1M reads back identical after unmount + remount', async () => {
    const M = c.mountDir;
    const sum = await shOk(`head -c $((1024 * 1024 * 1024)) /dev/urandom > ${LOCAL}/src && md5sum < ${LOCAL}/src`, { timeoutMs: 60_000 });
    await shOk(`dd if=${LOCAL}/src of=${M}/big bs=1M status=none && echo small > ${M}/small`, { timeoutMs: 300_000 });
    rmSync(join(LOCAL, 'src'));
    await c.mount!.unmount();
    expect(isMountPoint(M)).toBe(false);
    await c.remount();
    expect(isMountPoint(M)).toBe(true);
    const out = await shOk(`stat -c %s ${M}/big && md5sum < ${M}/big && cat ${M}/small`, { timeoutMs: 120_000 });
    expect(out.trim().split('\n')).toEqual([String(1024 * 1024 * 1024), sum.trim(), 'small']);
  }, 600_000);

  test('fusermount3 -u from outside ends the mount process, and the data is kept', async () => {
    const M = c.mountDir;
    const proc = c.mount!.proc;
    await shOk(`seq 1 100000 > ${M}/outside && sync`, { timeoutMs: 60_000 });
    let timer: NodeJS.Timeout | undefined;
    const exited = new Promise<number | string | null>((r) => {
      proc.once('exit', (code) => r(code));
      timer = setTimeout(() => r('still running 20 s after the unmount'), 20_000);
    });
    await shOk(`fusermount3 -u ${M}`, { timeoutMs: 30_000 });
    const code = await exited.finally(() => clearTimeout(timer));
    expect(code).toBe(0);
    expect(isMountPoint(M)).toBe(false);
    await c.remount();
    expect((await shOk(`wc -l < ${M}/outside`)).trim()).toBe('100000');
  }, 120_000);

  test('a dead mount ("Transport endpoint is not connected") is cleaned up before mounting', async () => {
    const dead = join(LOCAL, 'dead');
    const fuseNative = join(process.cwd(), 'node_modules', 'fuse-native');
    // A throw-away FUSE daemon in its own process, killed with SIGKILL once mounted.
    const daemon = `
      const Fuse = require(${JSON.stringify(fuseNative)});
      const f = new Fuse(${JSON.stringify(dead)}, { getattr: (p, cb) => cb(0, { mode: 0o40755, nlink: 2, ino: 1 }) }, { mkdir: true });
      f.mount((err) => { if (err) { console.error(err); process.exit(1); } console.log('ready'); setInterval(() => {}, 1000); });`;
    writeFileSync(join(LOCAL, 'daemon.cjs'), daemon);
    await shOk(`(node ${LOCAL}/daemon.cjs > ${LOCAL}/daemon.out 2>&1 & echo $! > ${LOCAL}/daemon.pid)
      for i in $(seq 1 100); do grep -q ready ${LOCAL}/daemon.out && break; sleep 0.1; done
      kill -9 $(cat ${LOCAL}/daemon.pid)`, { timeoutMs: 30_000 });
    const probe = await shOk(`sleep 0.2; stat ${dead} 2>&1 || true`);
    expect(probe).toMatch(/not connected/);
    expect(isMountPoint(dead)).toBe(true);
    await cleanStaleMount(dead);
    expect(isMountPoint(dead)).toBe(false);
  });

  test('cleanStaleMount leaves live mounts and plain directories alone', async () => {
    await cleanStaleMount(c.mountDir);
    expect(isMountPoint(c.mountDir)).toBe(true);
    await cleanStaleMount(LOCAL);
    expect((await shOk(`stat -c %F ${c.mountDir}`)).trim()).toBe('directory');
  });

  // Last: it leaves the cluster one chunkserver short.
  test('cp of a large file completes and is identical when a chunkserver is killed during it', async () => {
    const M = c.mountDir;
    await shOk(`head -c $((256 * 1024 * 1024)) /dev/urandom > ${LOCAL}/cs-src`, { timeoutMs: 60_000 });
    const cp = shOk(`cp ${LOCAL}/cs-src ${M}/during-failure`, { timeoutMs: 240_000 });
    await new Promise((r) => setTimeout(r, 1_000));
    await c.chunkservers[0]!.kill(); // SIGKILL, mid-copy
    await cp;
    await shOk(`cmp ${LOCAL}/cs-src ${M}/during-failure`, { timeoutMs: 60_000 });
    // Self-healing: the master re-replicates what the dead server held; fsck turns healthy.
    const started = Date.now();
    const env = { GFS_SECRET_FILE: join(c.dir, 'master', 'client.key') };
    await shOk(`for i in $(seq 1 240); do node ${CLI} fsck --master ${c.masterAddr} > /dev/null && exit 0; sleep 0.5; done; node ${CLI} fsck --master ${c.masterAddr}`, { timeoutMs: 180_000, env });
    console.log(`every chunk back at 3 replicas ${((Date.now() - started) / 1000).toFixed(1)} s after the copy finished`);
    await shOk(`cmp ${LOCAL}/cs-src ${M}/during-failure`, { timeoutMs: 60_000 });
  }, 600_000);
});
