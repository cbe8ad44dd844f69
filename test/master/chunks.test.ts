import { describe, expect, it } from 'vitest';
import { ROOT, addServers, code, makeMaster } from './helpers.js';

const hb = (serverId: string, extra: Record<string, unknown> = {}) => ({
  serverId,
  addr: '',
  capacity: 1_000_000,
  used: 0,
  load: 0,
  chunks: [],
  fullReport: false,
  corrupt: [],
  ...extra,
});

describe('server registry', () => {
  it('places on least used fraction, then least load, distinct alive servers', () => {
    const m = makeMaster();
    m.cluster.register({ serverId: 'full', addr: 'h:1', capacity: 100, used: 90, chunks: [] });
    m.cluster.register({ serverId: 'busy', addr: 'h:2', capacity: 100, used: 10, chunks: [] });
    m.cluster.register({ serverId: 'idle', addr: 'h:3', capacity: 1000, used: 100, chunks: [] });
    m.cluster.register({ serverId: 'empty', addr: 'h:4', capacity: 100, used: 0, chunks: [] });
    m.cluster.heartbeat(hb('busy', { capacity: 100, used: 10, load: 9 }));
    m.cluster.heartbeat(hb('idle', { capacity: 1000, used: 100, load: 1 }));
    expect(m.core.registry.place(3).map((s) => s.id)).toEqual(['empty', 'idle', 'busy']);
    expect(m.core.registry.place(10)).toHaveLength(4);
    expect(m.core.registry.place(2, new Set(['empty'])).map((s) => s.id)).toEqual(['idle', 'busy']);
  });

  it('moves servers alive -> suspect -> dead and back', () => {
    const m = makeMaster();
    addServers(m, 2);
    m.advance(350);
    m.cluster.heartbeat(hb('cs-1'));
    expect(m.core.registry.stateOf('cs-0')).toBe('suspect');
    expect(m.core.registry.stateOf('cs-1')).toBe('alive');
    expect(m.core.registry.place(3).map((s) => s.id)).toEqual(['cs-1']);
    m.advance(700);
    expect(m.core.registry.stateOf('cs-0')).toBe('dead');
    const status = m.cluster.clusterStatus();
    expect(status.servers.find((s) => s.serverId === 'cs-0')?.state).toBe('dead');
    // Back from the dead only through Register (a full report checked before it serves again).
    expect(m.cluster.heartbeat(hb('cs-0')).reregister).toBe(true);
    expect(m.core.registry.stateOf('cs-0')).toBe('dead');
    m.cluster.register({ serverId: 'cs-0', addr: '127.0.0.1:7000', capacity: 1_000_000, used: 0, chunks: [] });
    expect(m.core.registry.stateOf('cs-0')).toBe('alive');
    expect(m.cluster.heartbeat(hb('cs-0')).reregister).toBe(false);
    expect(m.cluster.heartbeat(hb('cs-unknown')).reregister).toBe(true);
  });

  it('assigns ids, rejects bad addresses, reports statfs per goal', async () => {
    const m = makeMaster();
    const r = m.cluster.register({ serverId: '', addr: '10.0.0.1:7000', capacity: 3000, used: 300, chunks: [] });
    expect(r.serverId).toMatch(/^cs-[0-9a-f]{12}$/);
    expect(r.heartbeatMs).toBe(100);
    m.cluster.register({ serverId: r.serverId, addr: '10.0.0.2:7000', capacity: 3000, used: 300, chunks: [] });
    expect(m.core.registry.get(r.serverId)?.addr).toBe('10.0.0.2:7000');
    expect(await code(() => m.cluster.register({ serverId: '', addr: 'nonsense', capacity: 0, used: 0, chunks: [] }))).toBe('EINVAL');
    const s = m.cluster.statfs();
    expect(s).toMatchObject({ totalBytes: 1000, usedBytes: 100, freeBytes: 900, nameMax: 255, blockSize: 4096, chunkSize: 65536 });
  });
});

describe('chunks and leases', () => {
  it('allocates missing chunks with version 1 and a lease, without SetVersion', async () => {
    const m = makeMaster();
    addServers(m, 4);
    const f = m.ns.create('/f', 0o644, ROOT, 0, true);
    const r = await m.chunks.getChunks(f.ino, 70_000, 100_000, true); // indices 1 and 2
    expect(r.chunks.map((c) => c.index)).toEqual([1, 2]);
    for (const c of r.chunks) {
      expect(c.version).toBe(1);
      expect(new Set(c.replicas.map((x) => x.serverId)).size).toBe(3);
      expect(c.replicas.map((x) => x.serverId)).toContain(c.primary);
      expect(c.leaseExpiryMs).toBeGreaterThan(Date.now());
    }
    expect(m.calls.calls).toHaveLength(0);
    const again = await m.chunks.getChunks(f.ino, 0, 200_000, false);
    expect(again.chunks.map((c) => c.index)).toEqual([1, 2]); // index 0 is a hole
    expect(again.fileSize).toBe(0);
    expect(again.chunkSize).toBe(65536);
    const w = await m.chunks.getChunks(f.ino, 70_000, 100_000, true);
    expect(w.chunks.map((c) => c.handle)).toEqual(r.chunks.map((c) => c.handle));
    expect(m.calls.calls).toHaveLength(0); // lease still valid: renewed, no version bump
  });

  it('refuses without live servers and for non-files', async () => {
    const m = makeMaster();
    const f = m.ns.create('/f', 0o644, ROOT, 0, true);
    expect(await code(() => m.chunks.getChunks(f.ino, 0, 1, true))).toBe('EHOSTDOWN');
    expect(f.chunks!.size).toBe(0);
    expect(await code(() => m.chunks.getChunks(1, 0, 1, false))).toBe('EISDIR');
    expect(await code(() => m.chunks.getChunks(12345, 0, 1, false))).toBe('ENOENT');
    expect(await code(() => m.chunks.getChunks(f.ino, -1, 1, false))).toBe('EINVAL');
    const l = m.ns.symlink('x', '/l', ROOT);
    expect(await code(() => m.chunks.getChunks(l.ino, 0, 1, false))).toBe('EINVAL');
  });

  it('grants a new lease with a version bump when a replica is no longer alive', async () => {
    const m = makeMaster();
    addServers(m, 3);
    const f = m.ns.create('/f', 0o644, ROOT, 0, true);
    const [c] = (await m.chunks.getChunks(f.ino, 0, 1, true)).chunks;
    // cs-2 misses its heartbeats; the others keep beating.
    m.advance(350);
    m.cluster.heartbeat(hb('cs-0'));
    m.cluster.heartbeat(hb('cs-1'));
    m.calls.delayMs = 20;
    const [a, b] = await Promise.all([
      m.chunks.getChunks(f.ino, 0, 1, true),
      m.chunks.getChunks(f.ino, 0, 1, true),
    ]);
    const sv = m.calls.of('setVersion');
    expect(sv).toHaveLength(2); // one grant, not two
    expect(sv.map((x) => x.addr).sort()).toEqual(['127.0.0.1:7000', '127.0.0.1:7001']);
    expect(sv.every((x) => x.handle === c!.handle && x.oldVersion === 1 && x.newVersion === 2)).toBe(true);
    expect(a.chunks[0]!.version).toBe(2);
    expect(b.chunks[0]!.primary).toBe(a.chunks[0]!.primary);
    expect(a.chunks[0]!.replicas.map((r) => r.serverId).sort()).toEqual(['cs-0', 'cs-1']);
    expect(m.core.chunks.replicas(c!.handle).sort()).toEqual(['cs-0', 'cs-1']);
    const status = m.cluster.clusterStatus();
    expect(status.underReplicated).toBe(1);
  });

  it('drops replicas that fail SetVersion', async () => {
    const m = makeMaster();
    addServers(m, 3);
    const f = m.ns.create('/f', 0o644, ROOT, 0, true);
    const [c] = (await m.chunks.getChunks(f.ino, 0, 1, true)).chunks;
    m.core.leases.revoke(c!.handle);
    m.calls.failing.add('127.0.0.1:7001');
    const [c2] = (await m.chunks.getChunks(f.ino, 0, 1, true)).chunks;
    expect(c2!.version).toBe(2);
    expect(c2!.replicas.map((r) => r.serverId).sort()).toEqual(['cs-0', 'cs-2']);
    m.calls.failing.add('127.0.0.1:7000');
    m.calls.failing.add('127.0.0.1:7002');
    m.core.leases.revoke(c!.handle);
    expect(await code(() => m.chunks.getChunks(f.ino, 0, 1, true))).toBe('EHOSTDOWN');
  });

  it('truncates: frees whole chunks, cuts the partial one under a new version', async () => {
    const m = makeMaster();
    addServers(m, 3);
    const f = m.ns.create('/f', 0o644, ROOT, 0, true);
    const cs = 65536;
    const r = await m.chunks.getChunks(f.ino, 0, 3 * cs, true);
    m.chunks.commitWrite(f.ino, 3 * cs);
    const [h0, h1, h2] = r.chunks.map((c) => c.handle);
    await m.attrs.setattr({ path: '/f', ino: 0, cred: ROOT, valid: 8, size: cs + 100 });
    expect(f.size).toBe(cs + 100);
    expect([...f.chunks!.values()]).toEqual([h0, h1]);
    expect(m.core.chunks.get(h2!)).toBeUndefined();
    const tr = m.calls.of('truncate');
    expect(tr).toHaveLength(3);
    expect(tr.every((t) => t.handle === h1 && t.version === 2 && t.length === 100)).toBe(true);
    expect(m.core.leases.get(h1!)).toBeUndefined();
    expect(m.cluster.heartbeat(hb('cs-1')).delete).toEqual([h2]);
    // Reads still find the cut chunk at its new version.
    const rd = await m.chunks.getChunks(f.ino, 0, 10 * cs, false);
    expect(rd.chunks.map((c) => [c.handle, c.version])).toEqual([[h0, 1], [h1, 2]]);
    expect(rd.fileSize).toBe(cs + 100);
    // Cut on a chunk boundary: no Truncate call.
    await m.attrs.setattr({ path: '/f', ino: 0, cred: ROOT, valid: 8, size: cs });
    expect(m.calls.of('truncate')).toHaveLength(3);
    expect(f.chunks!.size).toBe(1);
  });

  it('commits sizes and reserves appends', async () => {
    const m = makeMaster();
    const f = m.ns.create('/f', 0o644, ROOT, 0, true);
    expect(m.chunks.commitWrite(f.ino, 100).size).toBe(100);
    expect(m.chunks.commitWrite(f.ino, 50).size).toBe(100);
    expect(m.chunks.reserveAppend(f.ino, 10)).toBe(100);
    expect(m.chunks.reserveAppend(f.ino, 10)).toBe(110);
    expect(f.size).toBe(120);
    expect(await code(() => m.chunks.commitWrite(f.ino, 2 ** 51))).toBe('EFBIG');
    expect(await code(() => m.chunks.reserveAppend(1, 1))).toBe('EISDIR');
  });
});

describe('chunk reports', () => {
  it('accepts current replicas, deletes stale and orphans, adopts newer versions', async () => {
    const m = makeMaster();
    addServers(m, 2);
    const f = m.ns.create('/f', 0o644, ROOT, 0, true);
    const r = await m.chunks.getChunks(f.ino, 0, 2 * 65536, true);
    const [h0, h1] = r.chunks.map((c) => c.handle) as [number, number];
    m.core.mutate({ op: 'setVersion', handle: h0, version: 3 });
    m.core.leases.revoke(h0);
    m.core.leases.revoke(h1);
    const reply = m.cluster.register({
      serverId: 'cs-new',
      addr: 'h:9',
      capacity: 10,
      used: 0,
      chunks: [
        { handle: h0, version: 2 }, // stale
        { handle: h1, version: 1 }, // current
        { handle: 999_999, version: 1 }, // orphan
      ],
    });
    expect(reply.delete.sort((a, b) => a - b)).toEqual([h0, 999_999]);
    expect(m.core.chunks.replicas(h1)).toContain('cs-new');
    expect(m.core.chunks.replicas(h0)).not.toContain('cs-new');
    // A full report without h1 from cs-0 forgets that replica (no lease any more).
    m.cluster.heartbeat(hb('cs-0', { fullReport: true, chunks: [{ handle: h0, version: 3 }] }));
    expect(m.core.chunks.replicas(h1)).not.toContain('cs-0');
    // Newer than the master: adopt it, that server becomes the only replica.
    m.cluster.heartbeat(hb('cs-1', { fullReport: true, chunks: [{ handle: h1, version: 7 }] }));
    expect(m.core.chunks.get(h1)?.version).toBe(7);
    expect(m.core.chunks.replicas(h1)).toEqual(['cs-1']);
    // Corrupt replicas are dropped and deleted.
    const del = m.cluster.heartbeat(hb('cs-1', { corrupt: [h1] })).delete;
    expect(del).toEqual([h1]);
    expect(m.core.chunks.replicas(h1)).toEqual([]);
    expect(m.cluster.clusterStatus().missing).toBeGreaterThanOrEqual(1);
    expect(m.chunks.reportBadReplica(424242, 'cs-0', 'test')).toBe(false);
  });

  it('keeps replicas of freshly allocated chunks under a live lease', async () => {
    const m = makeMaster();
    addServers(m, 1);
    const f = m.ns.create('/f', 0o644, ROOT, 0, true);
    const [c] = (await m.chunks.getChunks(f.ino, 0, 1, true)).chunks;
    m.cluster.heartbeat(hb('cs-0', { fullReport: true, chunks: [] }));
    expect(m.core.chunks.replicas(c!.handle)).toEqual(['cs-0']);
  });
});
