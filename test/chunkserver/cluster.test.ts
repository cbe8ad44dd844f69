import { createServer } from 'node:net';
import { open, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DATA_BASE } from '../../src/chunkserver/chunk-meta.js';
import { startChunkserver, type ChunkserverHandle } from '../../src/chunkserver/chunkserver.js';
import { MiB } from '../../src/common/limits.js';
import type { ChunkServerStatusReply__Output as ChunkServerStatusReply, WriteReply__Output as WriteReply } from '../../src/generated/gfs/index.js';
import { call, clients, failure, pattern, push, read, startFakeMaster, tempDir, TEST_SECRET, until, type FakeMaster } from './helpers.js';

function chunkFile(dir: string, h: number): string {
  return join(dir, 'chunks', (h % 256).toString(16).padStart(2, '0'), `${h}.chunk`);
}

function same(actual: Buffer, expected: Buffer): void {
  if (!actual.equals(expected)) expect.fail(`buffers differ (lengths ${actual.length} and ${expected.length})`);
}

describe('three chunkservers', () => {
  let master: FakeMaster;
  const cs: ChunkserverHandle[] = [];
  const dirs: string[] = [];

  beforeAll(async () => {
    master = await startFakeMaster();
    for (let i = 0; i < 3; i++) {
      const dir = await tempDir();
      dirs.push(dir);
      cs.push(await startChunkserver({ secret: TEST_SECRET, dataDir: dir, master: master.addr, heartbeatMs: 50 }));
    }
    await until(() => master.registers.length >= 3, 'three registrations');
  });

  afterAll(async () => {
    await Promise.all(cs.map((c) => c.stop()));
    await master.stop();
    clients.close();
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('registers, and persists the id the master assigned', async () => {
    const ids = cs.map((c) => c.serverId);
    expect(new Set(ids).size).toBe(3);
    for (let i = 0; i < 3; i++) {
      expect(ids[i]).toMatch(/^cs-\d+$/);
      expect((await readFile(join(dirs[i]!, 'server-id'), 'utf8')).trim()).toBe(ids[i]);
    }
    expect(master.registers.map((r) => r.addr).sort()).toEqual(cs.map((c) => c.addr).sort());
  });

  it('pushes through a chain, writes at the primary, applies at secondaries, reads everywhere', async () => {
    const [a, b, c] = cs as [ChunkserverHandle, ChunkserverHandle, ChunkserverHandle];
    const data = pattern(MiB + 300 * 1024, 3);
    expect(await push(a.addr, 'd1', [b.addr, c.addr], data, 128 * 1024, 1001)).toBe(data.length);

    const w = await call<WriteReply>(a.addr, 'Write', {
      handle: 1001, version: 1, offset: 0, length: data.length, dataId: 'd1', secondaries: [b.addr, c.addr], sync: true,
    });
    expect(w).toEqual({ serial: 1, chunkLength: data.length });
    for (const s of cs) {
      const r = await read(s.addr, { handle: 1001, version: 1, offset: 0, length: 4 * MiB });
      same(r.data, data);
      expect(r.messages).toBe(2); // pieces of at most 1 MiB
    }

    // A read that starts mid-block and spans pieces.
    const off = 1000;
    const odd = await read(b.addr, { handle: 1001, version: 1, offset: off, length: MiB + 5000 });
    same(odd.data, data.subarray(off, off + MiB + 5000));

    // A small inline write, ordered after the first.
    const w2 = await call<WriteReply>(a.addr, 'Write', {
      handle: 1001, version: 1, offset: 1000, length: 5, data: Buffer.from('hello'), secondaries: [b.addr, c.addr],
    });
    expect(w2.serial).toBe(2);
    data.write('hello', 1000);
    const mid = await read(c.addr, { handle: 1001, version: 1, offset: 990, length: 20 });
    same(mid.data, data.subarray(990, 1010));
    expect((await read(b.addr, { handle: 1001, version: 1, offset: data.length, length: 10 })).messages).toBe(0);

    // The push buffer was used up, so the same data id is gone now (retryable).
    const gone = await failure(call(a.addr, 'Write', { handle: 1001, version: 1, offset: 0, length: 4, dataId: 'd1' }));
    expect(gone.errno).toBe('EAGAIN');
    expect(gone.details).toContain('push data d1 not found');

    const st = await call<ChunkServerStatusReply>(b.addr, 'Status', {});
    expect(st).toMatchObject({ serverId: b.serverId, chunks: 1, used: data.length });
    expect(st.capacity).toBeGreaterThan(data.length);

    // Heartbeats carry the chunk count, and a periodic full report lists the chunk.
    await until(
      () => master.beats.some((h) => h.serverId === a.serverId && h.fullReport && h.chunks.some((k) => k.handle === 1001)),
      'a full report with chunk 1001',
    );
  });

  it('orders concurrent writes to one chunk the same way on every replica', async () => {
    const [a, b, c] = cs as [ChunkserverHandle, ChunkserverHandle, ChunkserverHandle];
    const writes = Array.from({ length: 12 }, (_, i) =>
      call<WriteReply>(a.addr, 'Write', {
        handle: 1500, version: 1, offset: (i % 3) * 1000, length: 3000, data: pattern(3000, i), secondaries: [b.addr, c.addr],
      }),
    );
    const replies = await Promise.all(writes);
    expect(replies.map((r) => r.serial).sort((x, y) => x - y)).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
    const copies = await Promise.all(cs.map((s) => read(s.addr, { handle: 1500, version: 1, offset: 0, length: 10_000 })));
    expect(copies[0]!.data.length).toBe(5000);
    same(copies[1]!.data, copies[0]!.data);
    same(copies[2]!.data, copies[0]!.data);
  });

  it('fails a write when a secondary is unreachable, naming it', async () => {
    const [a, b] = cs as [ChunkserverHandle, ChunkserverHandle];
    const f = await failure(
      call(a.addr, 'Write', {
        handle: 1002, version: 1, offset: 0, length: 3, data: Buffer.from('abc'), secondaries: [b.addr, '127.0.0.1:1'],
      }),
    );
    expect(f.details).toContain('127.0.0.1:1');
    // The reachable secondary did apply it (the region is inconsistent until the client retries).
    same((await read(b.addr, { handle: 1002, version: 1, offset: 0, length: 3 })).data, Buffer.from('abc'));
  });

  it('answers bad requests with clear errors', async () => {
    const [a, b] = cs as [ChunkserverHandle, ChunkserverHandle];
    let f = await failure(read(a.addr, { handle: 424242, version: 1, offset: 0, length: 10 }));
    expect([f.code, f.errno]).toEqual([status.NOT_FOUND, 'ENOENT']);
    f = await failure(read(a.addr, { handle: 0, version: 1, offset: 0, length: 10 }));
    expect([f.code, f.errno]).toEqual([status.INVALID_ARGUMENT, 'EINVAL']);
    f = await failure(read(a.addr, { handle: 1001, version: 7, offset: 0, length: 10 }));
    expect([f.code, f.errno]).toEqual([status.FAILED_PRECONDITION, 'ESTALE']);
    f = await failure(call(a.addr, 'Write', { handle: 5, version: 1, offset: 0, length: 9, data: Buffer.from('abc') }));
    expect([f.code, f.errno]).toEqual([status.INVALID_ARGUMENT, 'EINVAL']);
    f = await failure(call(a.addr, 'Write', { handle: 5, version: 1, offset: 2 ** 30, length: 1, data: Buffer.from('a') }));
    expect(f.errno).toBe('EINVAL');
    f = await failure(call(a.addr, 'Write', { handle: 5, version: 1, offset: 0, length: 1, dataId: 'nope' }));
    expect([f.code, f.errno]).toEqual([status.UNAVAILABLE, 'EAGAIN']);
    f = await failure(call(a.addr, 'Write', { handle: 5, version: 1, offset: 0, length: 1, data: Buffer.from('a'), secondaries: ['bogus'] }));
    expect(f.errno).toBe('EINVAL');
    f = await failure(call(a.addr, 'Write', { handle: 5, version: 1, offset: 0, length: 1, data: Buffer.from('a'), secondaries: [a.addr] }));
    expect(f.errno).toBe('EINVAL');
    f = await failure(call(a.addr, 'SetVersion', { handle: 1001, oldVersion: 5, newVersion: 6 }));
    expect(f.errno).toBe('ESTALE');
    f = await failure(push(a.addr, '', [], Buffer.from('x')));
    expect(f.errno).toBe('EINVAL');
    // A push whose downstream is unreachable fails as a whole, and leaves no buffer behind.
    f = await failure(push(a.addr, 'd-bad', ['127.0.0.1:1'], pattern(1000)));
    expect(f.details).toContain('127.0.0.1:1');
    f = await failure(call(a.addr, 'Write', { handle: 6, version: 1, offset: 0, length: 1000, dataId: 'd-bad' }));
    expect(f.errno).toBe('EAGAIN');
    // Still serving.
    expect((await call<ChunkServerStatusReply>(b.addr, 'Status', {})).serverId).toBe(b.serverId);
  });

  it('admin: SetVersion, Truncate, Sync, Delete', async () => {
    const [a] = cs as [ChunkserverHandle];
    await call(a.addr, 'Write', { handle: 2001, version: 1, offset: 0, length: 10, data: Buffer.from('0123456789') });
    await call(a.addr, 'SetVersion', { handle: 2001, oldVersion: 1, newVersion: 2 });
    await call(a.addr, 'Truncate', { handle: 2001, version: 3, length: 4 });
    await call(a.addr, 'Sync', { handle: 2001, version: 3 });
    same((await read(a.addr, { handle: 2001, version: 3, offset: 0, length: 100 })).data, Buffer.from('0123'));
    await call(a.addr, 'Delete', { handles: [2001, 999999] });
    expect((await failure(read(a.addr, { handle: 2001, version: 3, offset: 0, length: 1 }))).errno).toBe('ENOENT');
  });

  it('detects a corrupt replica, reports it in a heartbeat, and drops chunks the master names', async () => {
    const [a, b, c] = cs as [ChunkserverHandle, ChunkserverHandle, ChunkserverHandle];
    const data = pattern(200 * 1024, 9);
    await push(a.addr, 'd3', [b.addr, c.addr], data, undefined, 3003);
    await call(a.addr, 'Write', { handle: 3003, version: 2, offset: 0, length: data.length, dataId: 'd3', secondaries: [b.addr, c.addr] });
    const fh = await open(chunkFile(dirs[1]!, 3003), 'r+');
    await fh.write(Buffer.from([data[70_000]! ^ 0x55]), 0, 1, DATA_BASE + 70_000);
    await fh.close();
    const f = await failure(read(b.addr, { handle: 3003, version: 2, offset: 0, length: data.length }));
    expect([f.code, f.errno]).toEqual([status.INTERNAL, 'EIO']);
    expect(f.details).toContain('checksum mismatch in chunk 3003 block 1');
    await until(() => master.beats.some((h) => h.serverId === b.serverId && h.corrupt.includes(3003)), 'corrupt report');
    // Never served again, even the good block.
    expect((await failure(read(b.addr, { handle: 3003, version: 2, offset: 0, length: 10 }))).errno).toBe('EIO');
    // The other replicas are fine.
    same((await read(c.addr, { handle: 3003, version: 2, offset: 0, length: data.length })).data, data);

    master.deleteNext.set(c.serverId, [3003]);
    await until(() => !master.deleteNext.has(c.serverId), 'delete sent');
    const file = chunkFile(dirs[2]!, 3003);
    for (let i = 0; ; i++) {
      const gone = await stat(file).then(() => false, () => true);
      if (gone) break;
      if (i > 100) expect.fail('chunk file not removed');
      await new Promise((r) => setTimeout(r, 20));
    }
    expect((await failure(read(c.addr, { handle: 3003, version: 2, offset: 0, length: 1 }))).errno).toBe('ENOENT');
  });

  it('registers again when the master asks', async () => {
    const [a] = cs as [ChunkserverHandle];
    const before = master.registers.filter((r) => r.serverId === a.serverId).length;
    master.reregisterNext.add(a.serverId);
    await until(() => master.registers.filter((r) => r.serverId === a.serverId).length > before, 're-registration');
    const last = master.registers.filter((r) => r.serverId === a.serverId).at(-1)!;
    expect(last.chunks.map((k) => k.handle)).toContain(1001);
  });
});

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

describe('one chunkserver', () => {
  it('starts without a master, registers when it appears, keeps its id across restarts', async () => {
    const dir = await tempDir();
    const port = await freePort();
    const t0 = Date.now();
    let cs = await startChunkserver({ secret: TEST_SECRET, dataDir: dir, master: `127.0.0.1:${port}`, heartbeatMs: 50 });
    expect(Date.now() - t0).toBeLessThan(3_000);
    expect(cs.serverId).toBe('');
    const master = await startFakeMaster(port);
    try {
      await until(() => cs.serverId !== '', 'registration after the master came up', 8_000);
      const id = cs.serverId;
      await call(cs.addr, 'Write', { handle: 77, version: 4, offset: 0, length: 2, data: Buffer.from('hi') });
      await cs.stop();
      cs = await startChunkserver({ secret: TEST_SECRET, dataDir: dir, master: master.addr, heartbeatMs: 50 });
      expect(cs.serverId).toBe(id);
      const last = master.registers.at(-1)!;
      expect(last.serverId).toBe(id);
      expect(last.chunks).toEqual([{ handle: 77, version: 4, length: 2 }]);
      same((await read(cs.addr, { handle: 77, version: 4, offset: 0, length: 2 })).data, Buffer.from('hi'));
    } finally {
      await cs.stop();
      await master.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('bounds buffered push data with RESOURCE_EXHAUSTED', async () => {
    const dir = await tempDir();
    const master = await startFakeMaster();
    const cs = await startChunkserver({ secret: TEST_SECRET, dataDir: dir, master: master.addr, pushBufferBytes: MiB });
    try {
      expect(await push(cs.addr, 'p1', [], pattern(700 * 1024), undefined, 9)).toBe(700 * 1024);
      const f = await failure(push(cs.addr, 'p2', [], pattern(700 * 1024)));
      expect([f.code, f.errno]).toEqual([status.RESOURCE_EXHAUSTED, 'EAGAIN']);
      // Using p1 frees its space.
      await call(cs.addr, 'Write', { handle: 9, version: 1, offset: 0, length: 700 * 1024, dataId: 'p1' });
      expect(await push(cs.addr, 'p2', [], pattern(700 * 1024))).toBe(700 * 1024);
    } finally {
      await cs.stop();
      await master.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
