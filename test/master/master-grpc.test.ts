// Starts the master in-process on an ephemeral port and talks to it through a real gRPC
// client, with tiny real chunkservers that answer SetVersion/Truncate/Delete.
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GfsError } from '../../src/common/errors.js';
import { silentLogger } from '../../src/common/logger.js';
import { proto } from '../../src/common/proto.js';
import { callUnary, startServer, stopServer, unaryHandler } from '../../src/common/rpc.js';
import { clientChannel } from '../../src/common/auth.js';
import type { MasterClient } from '../../src/generated/gfs/Master.js';
import { type MasterHandle, startMaster } from '../../src/master/master.js';

interface FakeChunkServer {
  id: string;
  addr: string;
  server: grpc.Server;
  calls: Array<{ op: string; req: Record<string, unknown> }>;
  /** Every handle any heartbeat reply told this server to delete. */
  deleted: number[];
  beat?: NodeJS.Timeout;
}

async function fakeChunkServer(): Promise<FakeChunkServer> {
  const calls: FakeChunkServer['calls'] = [];
  const record = (op: string) =>
    unaryHandler<Record<string, unknown>, object>(silentLogger, op, (req) => {
      calls.push({ op, req });
      return {};
    });
  const { server, port } = await startServer(
    [[proto().gfs.ChunkServer.service, { SetVersion: record('SetVersion'), Truncate: record('Truncate'), Delete: record('Delete') }]],
    '127.0.0.1',
    0,
  );
  return { id: '', addr: `127.0.0.1:${port}`, server, calls, deleted: [] };
}

describe('master over gRPC', () => {
  let master: MasterHandle;
  let client: MasterClient;
  const servers: FakeChunkServer[] = [];
  // A promise-returning call by method name.
  const call = <Res = any>(name: string, req: object): Promise<Res> =>
    callUnary(client, (client as any)[name], req, 10_000, name);
  const errCode = async (name: string, req: object) => {
    try {
      await call(name, req);
      return 'OK';
    } catch (e) {
      return (e as GfsError).code;
    }
  };

  beforeAll(async () => {
    master = await startMaster({ port: 0, chunkSize: 64 * 1024, heartbeatMs: 100, suspectAfterMs: 500, deadAfterMs: 5_000, gcDelayMs: 0 });
    const Ctor = proto().gfs.Master;
    // Register/Heartbeat need the server credential (what a chunkserver presents).
    const { creds, options } = clientChannel({ keys: master.keys, role: 'server' }, {});
    client = new Ctor(master.addr, creds, options);
    for (let i = 0; i < 3; i++) {
      const s = await fakeChunkServer();
      const r = await call('Register', { serverId: '', addr: s.addr, capacity: 3_000_000, used: 300_000, chunks: [] });
      s.id = r.serverId;
      servers.push(s);
      s.beat = setInterval(() => beat(s).catch(() => {}), 100);
    }
  });

  async function beat(s: FakeChunkServer, extra: object = {}): Promise<{ delete: number[] }> {
    const reply = await call('Heartbeat', { serverId: s.id, addr: s.addr, capacity: 3_000_000, used: 300_000, load: 1, ...extra });
    s.deleted.push(...reply.delete);
    return reply;
  }

  afterAll(async () => {
    for (const s of servers) clearInterval(s.beat);
    client?.close();
    await master?.stop();
    await Promise.all(servers.map((s) => stopServer(s.server, 500)));
  });

  it('validates its options', async () => {
    await expect(startMaster({ chunkSize: 1000 })).rejects.toThrow(/multiple of 65536/);
    await expect(startMaster({ replication: 0 })).rejects.toThrow(/replication/);
    await expect(startMaster({ heartbeatMs: 100, suspectAfterMs: 500, deadAfterMs: 400 })).rejects.toThrow(/deadAfterMs/);
  });

  it('serves the namespace with errno on errors', async () => {
    const root = await call('GetAttr', { path: '/' });
    expect(root.attr).toMatchObject({ ino: 1, mode: 0o40755, nlink: 2 });
    const cred = { uid: 1000, gid: 1000, groups: [] };
    await call('Mkdir', { path: '/dir', mode: 0o755, cred });
    const f = await call('Create', { path: '/dir/file', mode: 0o644, cred, exclusive: true });
    expect(f.attr.uid).toBe(1000);
    expect(await errCode('Create', { path: '/dir/file', mode: 0o644, cred, exclusive: true })).toBe('EEXIST');
    expect(await errCode('GetAttr', { path: '/nope' })).toBe('ENOENT');
    expect(await errCode('Rmdir', { path: '/dir', cred })).toBe('ENOTEMPTY');
    expect(await errCode('Rename', { src: '/dir', dst: '/dir/x', cred })).toBe('EINVAL');
    expect(await errCode('Mkdir', { path: '/' + 'n'.repeat(300), mode: 0o755, cred })).toBe('ENAMETOOLONG');
    expect(await errCode('GetChunks', { ino: 987654, offset: 0, length: 1 })).toBe('ENOENT');
    const dir = await call('ReadDir', { path: '/dir' });
    expect(dir.entries.map((e: { name: string }) => e.name)).toEqual(['file']);
    expect(dir.dir.mode).toBe(0o40755);
    await call('Symlink', { target: 'file', path: '/dir/link', cred });
    expect((await call('Readlink', { path: '/dir/link' })).target).toBe('file');
    await call('SetXattr', { path: '/dir/file', name: 'user.x', value: Buffer.from('v'), flags: 0, cred });
    expect((await call('GetXattr', { path: '/dir/file', name: 'user.x' })).value.toString()).toBe('v');
    expect(await errCode('GetXattr', { path: '/dir/file', name: 'user.y' })).toBe('ENODATA');
    const t = await call('SetAttr', {
      path: '/dir/file',
      cred,
      valid: 0,
      mtime: { kind: 'TIME_SET', time: { sec: 4_102_444_800, nsec: 5 } },
    });
    expect(t.attr.mtime).toEqual({ sec: 4_102_444_800, nsec: 5 });
    expect(await errCode('SetAttr', { path: '/dir/file', cred, valid: 0, atime: { kind: 'TIME_SET', time: { sec: 1, nsec: 2e9 } } })).toBe('EINVAL');
  });

  it('UnlinkBatch applies each name on its own and answers each', async () => {
    const d = await call('Mkdir', { path: '/batch', mode: 0o755 });
    const e = await call('Mkdir', { path: '/batch2', mode: 0o755 });
    const parent = d.attr.ino;
    for (const n of ['a', 'b', 'twice']) await call('Create', { path: `/batch/${n}`, mode: 0o644, exclusive: true });
    await call('Create', { path: '/batch2/c', mode: 0o644, exclusive: true });
    await call('Mkdir', { path: '/batch/sub', mode: 0o755 });
    await call('Link', { src: '/batch/twice', dst: '/batch/other-name' });
    const r = await call('UnlinkBatch', {
      entries: [
        { parent, name: 'a' },
        { parent, name: 'missing' },
        { parent, name: 'sub' },
        { parent, name: 'a' }, // gone by the time it is applied
        { parent: e.attr.ino, name: 'c' },
        { parent, name: 'twice' },
        { parent: 987654, name: 'x' },
        { parent, name: 'b' },
      ],
    });
    expect(r.results.map((x: { errno: string }) => x.errno)).toEqual(['', 'ENOENT', 'EISDIR', 'ENOENT', '', '', 'ENOENT', '']);
    expect(r.results[2].message).toMatch(/sub/);
    const dirs = new Map(r.parents.map((a: { ino: number; nlink: number }) => [a.ino, a]));
    expect([...dirs.keys()].sort()).toEqual([parent, e.attr.ino].sort());
    const listing = await call('ReadDir', { path: '/batch' });
    expect(listing.entries.map((x: { name: string }) => x.name).sort()).toEqual(['other-name', 'sub']);
    expect((await call('GetAttr', { path: '/batch/other-name' })).attr.nlink).toBe(1);
    expect((await call('ReadDir', { path: '/batch2' })).entries).toEqual([]);
    expect(await errCode('UnlinkBatch', { entries: Array.from({ length: 1025 }, () => ({ parent, name: 'x' })) })).toBe('EINVAL');
  });

  it('UnlinkBatch leaves a name alone that holds another inode than the one named', async () => {
    const d = await call('Mkdir', { path: '/guard', mode: 0o755 });
    const parent = d.attr.ino;
    const old = await call('Create', { path: '/guard/f', mode: 0o644, exclusive: true });
    await call('Unlink', { path: '/guard/f' });
    const made = await call('Create', { path: '/guard/f', mode: 0o644, exclusive: true }); // made again since
    const r = await call('UnlinkBatch', { entries: [{ parent, name: 'f', ino: old.attr.ino }] });
    expect(r.results[0].errno).toBe('ENOENT');
    expect(r.results[0].message).toMatch(/no longer inode/);
    expect((await call('GetAttr', { path: '/guard/f' })).attr.ino).toBe(made.attr.ino);
    const ok = await call('UnlinkBatch', { entries: [{ parent, name: 'f', ino: made.attr.ino }] });
    expect(ok.results[0].errno).toBe('');
    expect(await errCode('GetAttr', { path: '/guard/f' })).toBe('ENOENT');
  });

  it('allocates chunks, truncates on replicas, and garbage-collects through heartbeats', async () => {
    const f = await call('Create', { path: '/data', mode: 0o644, exclusive: true });
    const ino = f.attr.ino;
    const w = await call('GetChunks', { ino, offset: 0, length: 100_000, forWrite: true });
    expect(w.chunks).toHaveLength(2);
    expect(w.chunkSize).toBe(65536);
    for (const c of w.chunks) {
      expect(c.replicas).toHaveLength(3);
      expect(c.primary).not.toBe('');
    }
    await call('CommitWrite', { ino, end: 100_000 });
    const a = await call('ReserveAppend', { ino, length: 10 });
    expect(a.offset).toBe(100_000);
    // Every server reports both chunks at version 1.
    for (const s of servers) {
      await beat(s, {
        fullReport: true,
        chunks: w.chunks.map((c: { handle: number }) => ({ handle: c.handle, version: 1, length: 1 })),
      });
      expect(s.deleted).toEqual([]);
    }
    const [c0, c1] = w.chunks as Array<{ handle: number }>;
    const tr = await call('SetAttr', { ino, valid: 8, size: 1000 });
    expect(tr.attr.size).toBe(1000);
    expect(tr.attr.blocks).toBe(2);
    for (const s of servers) {
      expect(s.calls.filter((x) => x.op === 'Truncate').map((x) => x.req)).toEqual([{ handle: c0!.handle, version: 2, length: 1000 }]);
      await beat(s);
      expect(s.deleted).toEqual([c1!.handle]);
    }
    // A new lease on the cut chunk needs no SetVersion while the replicas stay alive... but
    // the truncate revoked it, so the next write lookup bumps the version again.
    const w2 = await call('GetChunks', { ino, offset: 0, length: 1, forWrite: true });
    expect(w2.chunks[0].version).toBe(3);
    for (const s of servers) {
      expect(s.calls.filter((x) => x.op === 'SetVersion').map((x) => x.req)).toEqual([{ handle: c0!.handle, oldVersion: 2, newVersion: 3 }]);
    }
    // Open, unlink, release: chunks are freed only after the release.
    await call('Open', { ino, clientId: 'c1' });
    await call('Unlink', { path: '/data' });
    expect((await call('GetAttr', { ino })).attr.nlink).toBe(0);
    await call('Release', { ino, clientId: 'c1' });
    expect(await errCode('GetAttr', { ino })).toBe('ENOENT');
    await beat(servers[0]!);
    expect(servers[0]!.deleted).toEqual([c1!.handle, c0!.handle]);
  });

  it('re-grants leases without a server that stopped beating', async () => {
    const f = await call('Create', { path: '/lease', mode: 0o644, exclusive: true });
    const ino = f.attr.ino;
    const [c] = (await call('GetChunks', { ino, offset: 0, length: 1, forWrite: true })).chunks;
    const [alive1, alive2, quiet] = servers as [FakeChunkServer, FakeChunkServer, FakeChunkServer];
    clearInterval(quiet.beat);
    const stateOfQuiet = async () =>
      (await call('ClusterStatus', {})).servers.find((s: { serverId: string }) => s.serverId === quiet.id).state;
    for (let i = 0; i < 100 && (await stateOfQuiet()) === 'alive'; i++) await new Promise((r) => setTimeout(r, 50));
    expect(await stateOfQuiet()).toBe('suspect');
    const [c2] = (await call('GetChunks', { ino, offset: 0, length: 1, forWrite: true })).chunks;
    expect(c2.handle).toBe(c.handle);
    expect(c2.version).toBe(2);
    expect(c2.replicas.map((r: { serverId: string }) => r.serverId).sort()).toEqual([alive1.id, alive2.id].sort());
    expect(quiet.calls.filter((x) => x.op === 'SetVersion' && (x.req as { handle: number }).handle === c.handle)).toHaveLength(0);
    const st = await call('ClusterStatus', {});
    expect(st.underReplicated).toBeGreaterThanOrEqual(1);
    expect(st.chunkSize).toBe(65536);
    const fs = await call('StatFs', {});
    expect(fs.nameMax).toBe(255);
    expect(fs.totalBytes).toBe(Math.floor((3 * 3_000_000) / 3)); // suspect servers still count
  });

  it('answers unknown servers and bad requests without falling over', async () => {
    expect((await call('Heartbeat', { serverId: 'cs-ghost', addr: '1.2.3.4:5' })).reregister).toBe(true);
    expect(await errCode('Register', { serverId: '', addr: 'no-port' })).toBe('EINVAL');
    expect(await errCode('ReportBadReplica', { handle: 77777777, serverId: 'x' })).toBe('ENOENT');
    expect(await errCode('Rename', { src: '/', dst: '/x' })).toBe('EBUSY');
    expect((await call('GetAttr', { path: '/' })).attr.ino).toBe(1);
  });
});
