// Issue 7 acceptance, exports through real FUSE mounts: one master with an exports file, and
// a mount that reaches it from its own address (::1), under one rule after another:
// read-only (writes answer EROFS), root squash (root's files belong to the mapped uid), and a
// subtree (the mount sees /sub as its root and cannot climb out).
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GfsClient } from '../../src/client/client.js';
import { waitFor } from '../helpers/proc-cluster.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sh, shOk, startMount, startTestCluster, type TestCluster, type TestMount } from '../e2e/cluster.js';

const canMount = process.getuid?.() === 0;

// Root and FUSE are required (CI is root): a missing prerequisite fails loudly, never skips.
describe('exports through the mount', () => {
  it('runs as root, where FUSE mounts work', () => expect(canMount, 'these tests need root and /dev/fuse').toBe(true));
  // All processes share one machine, so the rules tell clients apart by address family: the
  // mounts reach the master over IPv6 loopback (::1), the test's own client and the
  // chunkservers over IPv4 (127.0.0.1, which a dual-stack socket sees as ::ffff:127.0.0.1).
  let c: TestCluster;
  let admin: GfsClient;
  let port = '';
  let exportsFile = '';
  let n = 0;
  const mnt = (name: string) => join(c.dir, name);

  /** Restarts the master under `rule` for ::1 and mounts over ::1 at a fresh directory. */
  async function mountUnder(rule: string, name: string): Promise<TestMount> {
    writeFileSync(exportsFile, ['# first match wins', `::1  ${rule}`, '*    /  rw', ''].join('\n'));
    await c.restartMaster();
    await waitFor(async () => (await admin.clusterStatus()).servers.filter((s) => s.state === 'alive').length === 3, 'chunkservers back', 30_000);
    mkdirSync(mnt(name), { recursive: true });
    return startMount(c.dir, `[::1]:${port}`, mnt(name), 10 + ++n);
  }

  beforeAll(async () => {
    exportsFile = join(tmpdir(), `gfs-exports-${process.pid}`);
    writeFileSync(exportsFile, '* / rw\n');
    c = await startTestCluster({ chunkservers: 3, mount: false, masterArgs: ['--host', '[::]', '--no-http', '--exports', exportsFile] });
    port = c.masterAddr.split(':').pop()!;
    admin = new GfsClient({ master: `127.0.0.1:${port}`, secretFile: join(c.dir, 'master', 'client.key') });
    await admin.mkdir('/sub', 0o755);
    await admin.writeFile('/sub/inside', Buffer.from('in the subtree\n'));
    await admin.writeFile('/top', Buffer.from('top level\n'));
  }, 120_000);

  afterAll(async () => {
    await admin?.close();
    await c?.stop();
    rmSync(exportsFile, { force: true });
  });

  it('a read-only export reads, and refuses every write with EROFS', async () => {
    const m = await mountUnder('/ ro', 'ro');
    try {
      expect(await shOk(`cat ${mnt('ro')}/top`)).toBe('top level\n');
      for (const cmd of [`touch ${mnt('ro')}/new`, `echo x >> ${mnt('ro')}/top`, `mkdir ${mnt('ro')}/d`, `rm ${mnt('ro')}/top`, `chmod 600 ${mnt('ro')}/top`, `mv ${mnt('ro')}/top ${mnt('ro')}/t2`]) {
        const r = await sh(cmd);
        expect(r.code, cmd).not.toBe(0);
        expect(r.stderr, cmd).toMatch(/Read-only file system/);
      }
    } finally {
      await m.unmount();
    }
    expect((await admin.readFile('/top')).toString()).toBe('top level\n');
    expect((await admin.readdir('/')).map((e) => e.name).sort()).toEqual(['sub', 'top']);
  });

  it('root squash maps root to the configured uid and gid', async () => {
    const priv = await admin.create('/private', 0o100600, { uid: 1000, gid: 1000, groups: [] });
    await admin.write(priv.ino, 0, Buffer.from('mine'));
    const m = await mountUnder('/ rw maproot=4321:4322', 'squash');
    try {
      await shOk(`echo squashed > ${mnt('squash')}/byroot && mkdir ${mnt('squash')}/dirbyroot`);
      expect((await shOk(`stat -c '%u:%g' ${mnt('squash')}/byroot ${mnt('squash')}/dirbyroot`)).trim().split('\n')).toEqual(['4321:4322', '4321:4322']);
      const a = await admin.getattr('/byroot');
      expect([a.uid, a.gid]).toEqual([4321, 4322]);
      expect(await shOk(`cat ${mnt('squash')}/byroot`)).toBe('squashed\n');
      // Squashed root is an ordinary user to the master: no token for another user's private file.
      const r = await sh(`cat ${mnt('squash')}/private`);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/Permission denied/);
    } finally {
      await m.unmount();
    }
  });

  it('a subtree export shows the subtree as its root and nothing outside it', async () => {
    const m = await mountUnder('/sub rw', 'sub');
    try {
      expect((await shOk(`ls -A ${mnt('sub')}`)).trim().split('\n')).toEqual(['inside']);
      expect(await shOk(`cat ${mnt('sub')}/inside`)).toBe('in the subtree\n');
      await shOk(`echo made > ${mnt('sub')}/made-in-sub && mkdir ${mnt('sub')}/d && mv ${mnt('sub')}/made-in-sub ${mnt('sub')}/d/moved`);
      expect((await admin.readFile('/sub/d/moved')).toString()).toBe('made\n');
      expect((await admin.readdir('/')).map((e) => e.name)).not.toContain('d');
      const r = await sh(`rmdir ${mnt('sub')}/d/.. 2>&1; ls ${mnt('sub')}`);
      expect(r.stdout).toContain('inside');
      // A batch of unlinks naming a directory outside the subtree is refused as a whole.
      const outsider = new GfsClient({ master: `[::1]:${port}`, secretFile: join(c.dir, 'master', 'client.key') });
      try {
        const top = await admin.getattr('/');
        await expect(outsider.unlinkBatch([{ parent: top.ino, name: 'top' }])).rejects.toMatchObject({ code: 'ENOENT' });
      } finally {
        await outsider.close();
      }
      expect((await admin.readdir('/')).map((e) => e.name)).toContain('top');
    } finally {
      await m.unmount();
    }
  });
});
