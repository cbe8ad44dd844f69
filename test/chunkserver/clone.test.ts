// Clone between real in-process chunkservers: a byte-identical copy with the same checksums,
// idempotency and version rules, failures (corrupt source, wrong version, source stopped,
// chunk deleted at either end) that leave nothing behind, the bandwidth bound, the queue bound.
import { open, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Admission } from '../../src/chunkserver/admission.js';
import { DATA_BASE } from '../../src/chunkserver/chunk-meta.js';
import { ChunkStore } from '../../src/chunkserver/chunk-store.js';
import { startChunkserver, type ChunkserverHandle } from '../../src/chunkserver/chunkserver.js';
import { Cloner } from '../../src/chunkserver/cloner.js';
import { GfsError } from '../../src/common/errors.js';
import { CHECKSUM_BLOCK, MiB } from '../../src/common/limits.js';
import { silentLogger } from '../../src/common/logger.js';
import { proto } from '../../src/common/proto.js';
import { ClientPool } from '../../src/common/rpc.js';
import type { ChunkServerClient } from '../../src/generated/gfs/ChunkServer.js';
import type { ChunkServerStatusReply__Output as StatusReply } from '../../src/generated/gfs/index.js';
import { call, clients, failure, pattern, read, startFakeMaster, tempDir, TEST_SECRET, TEST_SECURITY, tokenFor, until, type FakeMaster } from './helpers.js';

function shard(dir: string, h: number): string {
  return join(dir, 'chunks', (h % 256).toString(16).padStart(2, '0'));
}
const chunkFile = (dir: string, h: number) => join(shard(dir, h), `${h}.chunk`);

/** Files of chunk h (chunk, meta, clone temp) present in dir. */
async function filesOf(dir: string, h: number): Promise<string[]> {
  try {
    return (await readdir(shard(dir, h))).filter((n) => n.startsWith(`${h}.`)).sort();
  } catch {
    return [];
  }
}

function same(actual: Buffer, expected: Buffer): void {
  if (!actual.equals(expected)) expect.fail(`buffers differ (lengths ${actual.length} and ${expected.length})`);
}

async function flipByte(path: string, pos: number): Promise<void> {
  const fh = await open(path, 'r+');
  const b = Buffer.alloc(1);
  await fh.read(b, 0, 1, pos);
  b[0] = b[0]! ^ 0xff;
  await fh.write(b, 0, 1, pos);
  await fh.close();
}

async function put(addr: string, handle: number, version: number, data: Buffer): Promise<void> {
  await call(addr, 'Write', { handle, version, offset: 0, length: data.length, data, secondaries: [], sync: false });
}

function clone(target: string, handle: number, version: number, source: string, bytesPerSec = 0): Promise<unknown> {
  return call(target, 'Clone', { handle, version, source, bytesPerSec });
}

describe('Clone', () => {
  let master: FakeMaster;
  let a: ChunkserverHandle; // the usual source
  let b: ChunkserverHandle; // the usual target
  const dirs: string[] = [];
  const servers: ChunkserverHandle[] = [];

  async function server(dir?: string): Promise<ChunkserverHandle> {
    dir ??= await tempDir();
    if (!dirs.includes(dir)) dirs.push(dir);
    const s = await startChunkserver({ secret: TEST_SECRET, dataDir: dir, master: master.addr, heartbeatMs: 50, scrubBytesPerSec: 0 });
    servers.push(s);
    return s;
  }
  const dirOf = (s: ChunkserverHandle) => dirs[servers.indexOf(s)]!;

  beforeAll(async () => {
    master = await startFakeMaster();
    a = await server();
    b = await server();
  });

  afterAll(async () => {
    await Promise.all(servers.map((s) => s.stop()));
    await master.stop();
    clients.close();
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('copies a chunk byte for byte with the same checksums, and is idempotent', async () => {
    const data = pattern(3 * MiB + 1000, 5); // last block partial
    await put(a.addr, 11, 3, data);
    await clone(b.addr, 11, 3, a.addr);
    same((await read(b.addr, { handle: 11, version: 3, offset: 0, length: 8 * MiB })).data, data);
    const copy = await readFile(chunkFile(dirOf(b), 11));
    same(copy.subarray(DATA_BASE), data);
    // version, length and every block checksum: the meta slots are identical too
    same(copy, await readFile(chunkFile(dirOf(a), 11)));
    expect(await filesOf(dirOf(b), 11)).toEqual(['11.chunk']);
    expect(b.cloneStats).toMatchObject({ succeeded: 1, failed: 0, bytes: data.length });

    // Again: already here at that version -> OK without copying.
    await clone(b.addr, 11, 3, a.addr);
    expect(b.cloneStats).toMatchObject({ succeeded: 1, alreadyPresent: 1 });
    // An older version than the one held here is refused.
    const old = await failure(clone(b.addr, 11, 2, a.addr));
    expect(old).toMatchObject({ errno: 'ESTALE', code: status.FAILED_PRECONDITION });

    // The new replica is reported to the master.
    const st = await call<StatusReply>(b.addr, 'Status', {});
    expect(st.chunks).toBe(1);
    await until(() => master.beats.some((h) => h.serverId === b.serverId && h.fullReport && h.chunks.some((c) => c.handle === 11 && c.version === 3)), 'full report with the clone');
  });

  it('clones an empty chunk and replaces a stale replica', async () => {
    await call(a.addr, 'SetVersion', { handle: 12, oldVersion: 0, newVersion: 1 });
    await clone(b.addr, 12, 1, a.addr);
    expect((await read(b.addr, { handle: 12, version: 1, offset: 0, length: MiB })).data.length).toBe(0);

    // b holds chunk 13 at version 1; a has moved on to version 2 with other bytes.
    await put(b.addr, 13, 1, pattern(700_000, 1));
    const fresh = pattern(300_000, 2);
    await put(a.addr, 13, 2, fresh);
    await clone(b.addr, 13, 2, a.addr);
    same((await read(b.addr, { handle: 13, version: 2, offset: 0, length: MiB })).data, fresh);
    expect((await failure(read(b.addr, { handle: 13, version: 1, offset: 0, length: 1 })))).toMatchObject({ errno: 'ESTALE' });
  });

  it('rejects bad requests: bad handle, missing or own address as source', async () => {
    expect(await failure(clone(b.addr, 0, 1, a.addr))).toMatchObject({ errno: 'EINVAL' });
    expect(await failure(clone(b.addr, 14, 1, ''))).toMatchObject({ errno: 'EINVAL' });
    expect(await failure(clone(b.addr, 14, 1, 'nonsense'))).toMatchObject({ errno: 'EINVAL' });
    expect(await failure(clone(b.addr, 14, 1, b.addr))).toMatchObject({ errno: 'EINVAL' });
    // A source that does not hold the chunk.
    expect(await failure(clone(b.addr, 14, 1, a.addr))).toMatchObject({ errno: 'ENOENT' });
    expect(await filesOf(dirOf(b), 14)).toEqual([]);
  });

  it('fails with EIO when the source has a bad block, and installs nothing', async () => {
    await put(a.addr, 21, 1, pattern(MiB, 7));
    await flipByte(chunkFile(dirOf(a), 21), DATA_BASE + 5 * CHECKSUM_BLOCK + 17);
    const f = await failure(clone(b.addr, 21, 1, a.addr));
    expect(f.errno).toBe('EIO');
    expect(f.details).toMatch(/checksum mismatch/);
    expect(await filesOf(dirOf(b), 21)).toEqual([]);
    expect((await failure(read(b.addr, { handle: 21, version: 1, offset: 0, length: 1 }))).errno).toBe('ENOENT');
    // The source found it while reading for the clone and reports it.
    await until(() => master.beats.some((h) => h.serverId === a.serverId && h.corrupt.includes(21)), 'corrupt report from the source');
  });

  it('fails with ESTALE when the source does not have that version', async () => {
    await put(a.addr, 22, 3, pattern(200_000, 3));
    const f = await failure(clone(b.addr, 22, 4, a.addr));
    expect(f.errno).toBe('ESTALE');
    expect(await filesOf(dirOf(b), 22)).toEqual([]);
  });

  it('keeps to the bandwidth bound (lower bound only)', async () => {
    const data = pattern(4 * MiB, 9);
    await put(a.addr, 31, 1, data);
    const t0 = performance.now();
    await clone(b.addr, 31, 1, a.addr, 2 * MiB);
    const ms = performance.now() - t0;
    expect(ms).toBeGreaterThanOrEqual(1_500);
    same((await read(b.addr, { handle: 31, version: 1, offset: 0, length: 8 * MiB })).data, data);
  });

  it('fails cleanly when the chunk is deleted at the source or at the target mid-clone', async () => {
    await put(a.addr, 41, 1, pattern(4 * MiB, 4));
    const atSource = failure(clone(b.addr, 41, 1, a.addr, 2 * MiB));
    await until(() => b.cloneStats.active === 1, 'clone running');
    await new Promise((r) => setTimeout(r, 300));
    await call(a.addr, 'Delete', { handles: [41] });
    expect((await atSource).errno).toBe('ENOENT');
    expect(await filesOf(dirOf(b), 41)).toEqual([]);

    await put(a.addr, 42, 1, pattern(4 * MiB, 5));
    const atTarget = failure(clone(b.addr, 42, 1, a.addr, 2 * MiB));
    await until(() => b.cloneStats.active === 1, 'clone running');
    await new Promise((r) => setTimeout(r, 300));
    await call(b.addr, 'Delete', { handles: [42] });
    const f = await atTarget;
    expect(f.errno).toBe('ENOENT');
    expect(f.details).toMatch(/deleted/);
    expect(await filesOf(dirOf(b), 42)).toEqual([]);
    expect((await failure(read(b.addr, { handle: 42, version: 1, offset: 0, length: 1 }))).errno).toBe('ENOENT');
  });

  it('a caller that gives up (deadline) aborts its clone, which leaves nothing', async () => {
    await put(a.addr, 45, 1, pattern(4 * MiB, 8));
    const failedBefore = b.cloneStats.failed;
    const code = await new Promise<number>((resolve) =>
      clients.get(b.addr).Clone({ handle: 45, version: 1, source: a.addr, bytesPerSec: 2 * MiB, token: tokenFor('read', 45, 1) }, { deadline: Date.now() + 400 }, (err) =>
        resolve(err?.code ?? 0),
      ),
    );
    expect(code).toBe(status.DEADLINE_EXCEEDED);
    await until(() => b.cloneStats.failed > failedBefore && b.cloneStats.active === 0, 'clone aborted');
    expect(await filesOf(dirOf(b), 45)).toEqual([]);
  });

  it('a clone whose source stops mid-stream leaves no chunk, and no temp file after restart', async () => {
    const s = await server();
    const t = await server();
    const tDir = dirOf(t);
    await put(s.addr, 51, 1, pattern(4 * MiB, 6));
    const cut = failure(clone(t.addr, 51, 1, s.addr, MiB));
    await until(() => t.cloneStats.active === 1, 'clone running');
    await new Promise((r) => setTimeout(r, 500));
    await s.stop();
    const f = await cut;
    expect(['EHOSTDOWN', 'ECONNREFUSED', 'EIO', 'ETIMEDOUT']).toContain(f.errno);
    expect(await filesOf(tDir, 51)).toEqual([]);
    expect((await failure(read(t.addr, { handle: 51, version: 1, offset: 0, length: 1 }))).errno).toBe('ENOENT');

    // A crash mid-clone leaves `<handle>.clone` behind: start-up removes it, nothing is reported.
    await t.stop();
    await writeFile(join(shard(tDir, 51), '51.clone'), pattern(3 * MiB, 6));
    const before = master.registers.length;
    const t2 = await server(tDir);
    await until(() => master.registers.length > before, 'register after restart');
    const reg = master.registers.at(-1)!;
    expect(reg.addr).toBe(t2.addr);
    expect(reg.chunks.map((c) => c.handle)).not.toContain(51);
    expect(await filesOf(tDir, 51)).toEqual([]);
    await t2.stop();
  });
});

describe('Cloner bounds', () => {
  it('queues up to its bound, sheds past it, joins a duplicate, and aborts cleanly on close', async () => {
    const master = await startFakeMaster();
    const srcDir = await tempDir();
    const dstDir = await tempDir();
    const src = await startChunkserver({ secret: TEST_SECRET, dataDir: srcDir, master: master.addr, heartbeatMs: 50, scrubBytesPerSec: 0 });
    const store = await ChunkStore.open(dstDir);
    const peers = new ClientPool<ChunkServerClient>(proto().gfs.ChunkServer, TEST_SECURITY);
    const cloner = new Cloner({ store, peers, admission: new Admission(), self: () => '127.0.0.1:1', log: silentLogger, concurrency: 1, queueMax: 1 });
    try {
      for (const h of [61, 62, 63]) await put(src.addr, h, 1, pattern(2 * MiB, h));
      const req = (handle: number) => ({ handle, version: 1, source: src.addr, bytesPerSec: MiB, token: tokenFor('read', handle, 1) });
      const first = cloner.clone(req(61));
      const dup = cloner.clone(req(61)); // joins the first
      const queued = cloner.clone(req(62));
      first.catch(() => undefined);
      dup.catch(() => undefined);
      queued.catch(() => undefined);
      expect(cloner.stats).toMatchObject({ active: 1, queued: 1 });
      const shed = await cloner.clone(req(63)).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(shed).toBeInstanceOf(GfsError);
      expect((shed as GfsError).grpcCode).toBe(status.RESOURCE_EXHAUSTED);
      expect((shed as GfsError).retryable).toBe(true);
      // another version of a chunk being cloned is refused while the first runs
      expect(await cloner.clone({ ...req(61), version: 2 }).catch((e: GfsError) => e.code)).toBe('EAGAIN');

      await until(() => store.info(61) !== undefined, 'first clone installed');
      await Promise.all([first, dup]);
      expect(cloner.stats.succeeded).toBe(1);
      await until(() => cloner.stats.active === 1, 'second clone started');
      await new Promise((r) => setTimeout(r, 200));
      await cloner.close();
      expect(await queued.catch((e: GfsError) => e.code)).toBe('EHOSTDOWN');
      expect(store.info(62)).toBeUndefined();
      expect(await filesOf(dstDir, 62)).toEqual([]);
    } finally {
      await cloner.close();
      peers.close();
      await store.close();
      await src.stop();
      await master.stop();
      await rm(srcDir, { recursive: true, force: true });
      await rm(dstDir, { recursive: true, force: true });
    }
  });
});
