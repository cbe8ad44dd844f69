// Issue 2 acceptance: the cluster core with real processes on loopback.
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, statSync, openSync, writeSync, closeSync, existsSync, readSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DATA_BASE } from '../../src/chunkserver/chunk-meta.js';
import { GfsClient } from '../../src/client/client.js';
import { GfsError } from '../../src/common/errors.js';
import { proto } from '../../src/common/proto.js';
import { CHANNEL_OPTIONS } from '../../src/common/grpc-options.js';
import type { GetChunksReply__Output, ReadReply__Output } from '../../src/generated/gfs/index.js';
import { startProcCluster, stubChannel, waitFor, type ProcCluster } from '../helpers/proc-cluster.js';

const MiB = 1024 * 1024;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

function masterStub(addr: string) {
  return new (proto().gfs.Master)(addr, ...stubChannel(addr));
}

function getChunks(addr: string, ino: number, offset: number, length: number): Promise<GetChunksReply__Output> {
  const m = masterStub(addr);
  return new Promise((res, rej) =>
    m.GetChunks({ ino, offset, length }, { deadline: Date.now() + 5000 }, (err, r) => {
      m.close();
      err ? rej(err) : res(r!);
    }),
  );
}

async function expectCode(p: Promise<unknown>, code: string): Promise<void> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, `expected ${code}`).toBeInstanceOf(GfsError);
  expect((err as GfsError).code).toBe(code);
}

/** Chunk syncs a client has sent (each replica of each chunk counts one). */
function syncs(cl: GfsClient): number {
  const s = cl.stats.snapshot();
  return (s['data.Sync']?.count ?? 0) + (s['chunk.Sync']?.count ?? 0);
}

/** Finds the chunk file of `handle` on the chunkserver whose data dir is `dir`. */
function chunkFile(dir: string, handle: number): string | undefined {
  const shard = join(dir, 'chunks', (handle % 256).toString(16).padStart(2, '0'));
  const f = join(shard, `${handle}.chunk`);
  return existsSync(f) ? f : undefined;
}

describe('cluster core (64 MiB chunks)', () => {
  let c: ProcCluster;
  let client: GfsClient;

  beforeAll(async () => {
    c = await startProcCluster({ chunkservers: 3 });
    client = new GfsClient({ master: c.master.addr, secretFile: c.clientKeyFile });
    await waitFor(async () => (await client.clusterStatus()).servers.filter((s) => s.state === 'alive').length === 3, '3 live chunkservers');
  });
  afterAll(async () => {
    await client?.close();
    await c?.stop();
  });

  it('writes a 200 MiB file as 4 chunks with 3 distinct replicas each and reads it back identical', async () => {
    const data = randomBytes(200 * MiB);
    const attr = await client.writeFile('/big.bin', data);
    expect(attr.size).toBe(200 * MiB);
    const back = await client.readFile('/big.bin');
    expect(sha(back)).toBe(sha(data));

    const chunks = await getChunks(c.master.addr, attr.ino, 0, attr.size);
    expect(chunks.chunkSize).toBe(64 * MiB);
    expect(chunks.chunks.map((x) => x.index)).toEqual([0, 1, 2, 3]);
    for (const ch of chunks.chunks) {
      expect(new Set(ch.replicas.map((r) => r.serverId)).size).toBe(3);
    }
  });

  it('thousands of small reads in flight are coalesced into ReadBatch calls and all return the right bytes (gRPC)', async () => {
    const data = randomBytes(8 * MiB);
    const attr = await client.writeFile('/many-small.bin', data);
    const reader = new GfsClient({ master: c.master.addr, secretFile: c.clientKeyFile, dataChannel: false });
    const offsets = Array.from({ length: 3000 }, (_, i) => ((i * 7919) % (8 * MiB - 4096)));
    const got = await Promise.all(offsets.map((o) => reader.read(attr.ino, o, 4096)));
    got.forEach((b, i) => {
      if (!b.equals(data.subarray(offsets[i]!, offsets[i]! + 4096))) expect.fail(`read ${i} at ${offsets[i]} differs`);
    });
    const stats = reader.stats.snapshot();
    expect(stats['chunk.ReadBatch']?.count ?? 0).toBeGreaterThan(0);
    expect(stats['chunk.ReadBatch']?.errors ?? 0).toBe(0);
    expect(stats['data.Read']).toBeUndefined();
    await reader.close();
  });

  it('thousands of small reads in flight over the data channel all return the right bytes', async () => {
    const data = randomBytes(8 * MiB);
    const attr = await client.writeFile('/many-small-data.bin', data);
    const reader = new GfsClient({ master: c.master.addr, secretFile: c.clientKeyFile });
    const offsets = Array.from({ length: 3000 }, (_, i) => ((i * 7919) % (8 * MiB - 4096)));
    const got = await Promise.all(offsets.map((o) => reader.read(attr.ino, o, 4096)));
    got.forEach((b, i) => {
      if (!b.equals(data.subarray(offsets[i]!, offsets[i]! + 4096))) expect.fail(`read ${i} at ${offsets[i]} differs`);
    });
    const stats = reader.stats.snapshot();
    expect(stats['data.Read']?.count).toBe(3000);
    expect(stats['data.Read']?.errors ?? 0).toBe(0);
    expect(stats['chunk.ReadSmall']).toBeUndefined();
    await reader.close();
  });

  it('releases are batched: an unlinked file open twice is freed by one Release naming both handles', async () => {
    const attr = await client.writeFile('/unlinked-open', Buffer.from('still here'));
    const other = new GfsClient({ master: c.master.addr, secretFile: c.clientKeyFile });
    try {
      await other.open(attr.ino);
      await other.open(attr.ino);
      await client.unlink('/unlinked-open');
      expect((await other.read(attr.ino, 0, 100)).toString()).toBe('still here');
      const before = other.stats.snapshot()['master.Release']?.count ?? 0;
      await Promise.all([other.release(attr.ino), other.release(attr.ino)]);
      expect((other.stats.snapshot()['master.Release']?.count ?? 0) - before).toBe(1);
      await expectCode(other.getattr(attr.ino), 'ENOENT');
    } finally {
      await other.close();
    }
  });

  it('an fsync after close still reaches every replica, and one by a client that wrote nothing syncs the whole file', async () => {
    const attr = await client.writeFile('/synced-later', Buffer.alloc(10_000, 7));
    await client.release(attr.ino);
    let before = syncs(client);
    await client.fsync(attr.ino);
    expect(syncs(client) - before).toBe(3); // one chunk, three replicas
    before = syncs(client);
    await client.fsync(attr.ino);
    expect(syncs(client) - before).toBe(0); // nothing written since
    const other = new GfsClient({ master: c.master.addr, secretFile: c.clientKeyFile });
    try {
      await other.open(attr.ino);
      await other.fsync(attr.ino);
      expect(syncs(other)).toBe(3);
      await other.release(attr.ino);
    } finally {
      await other.close();
    }
  });

  it('past dirtyFilesMax the least recently written file is forgotten, and its fsync syncs all of it', async () => {
    const small = new GfsClient({ master: c.master.addr, secretFile: c.clientKeyFile, dirtyFilesMax: 1 });
    try {
      const a = await small.writeFile('/dirty-a', Buffer.alloc(5_000, 1));
      await small.fsync(a.ino);
      let before = syncs(small);
      await small.fsync(a.ino);
      expect(syncs(small) - before).toBe(0); // remembered: synced, nothing written since
      await small.writeFile('/dirty-b', Buffer.alloc(5_000, 2)); // the one file remembered now
      before = syncs(small);
      await small.fsync(a.ino);
      expect(syncs(small) - before).toBe(3); // forgotten: its one chunk on each of three replicas
    } finally {
      await small.close();
    }
    await expectCode(Promise.resolve().then(() => new GfsClient({ master: c.master.addr, dirtyFilesMax: 0 })), 'EINVAL');
  });

  it('close() sends the releases still batched: an unlinked file open only by the closing client is freed', async () => {
    const attr = await client.writeFile('/unlinked-at-close', Buffer.from('x'));
    const other = new GfsClient({ master: c.master.addr, secretFile: c.clientKeyFile });
    await other.open(attr.ino);
    await client.unlink('/unlinked-at-close');
    const released = other.release(attr.ino);
    await Promise.all([other.close(), other.close()]);
    await released;
    await expectCode(client.getattr(attr.ino), 'ENOENT');
  });

  it('a Release naming more inodes than the bound is refused with INVALID_ARGUMENT', async () => {
    const m = masterStub(c.master.addr);
    const err = await new Promise<grpc.ServiceError | null>((res) =>
      m.Release({ inos: Array.from({ length: 5000 }, () => 1), clientId: 'x' }, { deadline: Date.now() + 5000 }, (e) => {
        m.close();
        res(e);
      }),
    );
    expect(err?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(err?.details).toMatch(/at most 4096/);
  });

  it('reads past end of file return nothing, and a range crossing EOF is short', async () => {
    const attr = await client.writeFile('/small.txt', Buffer.from('hello world'));
    expect((await client.read(attr.ino, 100, 10)).length).toBe(0);
    expect((await client.read(attr.ino, 6, 100)).toString()).toBe('world');
  });

  it('refuses bad input with a clear error and changes nothing', async () => {
    await expectCode(client.getattr('/no/such/file'), 'ENOENT');
    await expectCode(client.create('/' + 'x'.repeat(256), 0o100644), 'ENAMETOOLONG');
    await client.writeFile('/plain', Buffer.from('x'));
    await expectCode(client.create('/plain/child', 0o100644), 'ENOTDIR');
    await client.mkdir('/d', 0o755);
    await client.mkdir('/d/sub', 0o755);
    await expectCode(client.rmdir('/d'), 'ENOTEMPTY');
    await expectCode(client.rename('/d', '/d/sub/inside'), 'EINVAL');
    expect((await client.readdir('/d')).map((e) => e.name)).toEqual(['sub']);
    await expectCode(client.read(1e15, 0, 10), 'ENOENT');
    await expectCode(client.read(-1, 0, 10), 'EINVAL');
  });

  it('rejects unknown and malformed chunk handles at a chunkserver without touching any file', async () => {
    const cs = new (proto().gfs.ChunkServer)(c.chunkservers[0]!.addr, ...stubChannel(c.chunkservers[0]!.addr));
    const read = (handle: number) =>
      new Promise<grpc.ServiceError>((res, rej) => {
        const call = cs.Read({ handle, version: 1, offset: 0, length: 10 }, { deadline: Date.now() + 5000 });
        call.on('data', (_m: ReadReply__Output) => rej(new Error('got data for a bogus handle')));
        call.on('error', (e) => res(e as grpc.ServiceError));
        call.on('end', () => rej(new Error('bogus handle read succeeded')));
      });
    const before = readdirSync(c.dir).sort();
    for (const h of [987654321, 0, -5, 2 ** 60]) {
      const err = await read(h);
      // Without an access token for the handle, the read is refused before anything is looked up.
      expect([grpc.status.NOT_FOUND, grpc.status.INVALID_ARGUMENT, grpc.status.PERMISSION_DENIED]).toContain(err.code);
      expect(err.details.length).toBeGreaterThan(0);
    }
    const del = await new Promise<grpc.ServiceError | null>((res) => cs.Delete({ handles: [-1, 2 ** 60, 424242] }, { deadline: Date.now() + 5000 }, (e) => res(e)));
    expect(del === null || typeof del.code === 'number').toBe(true);
    expect(readdirSync(c.dir).sort()).toEqual(before);
    cs.close();
  });
});

describe('random overwrite/append/truncate mix matches a local file (1 MiB chunks)', () => {
  let c: ProcCluster;
  let client: GfsClient;
  beforeAll(async () => {
    c = await startProcCluster({ chunkservers: 3, chunkSize: 1 * MiB });
    client = new GfsClient({ master: c.master.addr, secretFile: c.clientKeyFile });
    await waitFor(async () => (await client.clusterStatus()).servers.filter((s) => s.state === 'alive').length === 3, '3 live chunkservers');
  });
  afterAll(async () => {
    await client?.close();
    await c?.stop();
  });

  it('gives the same bytes as the same operations on a local buffer', async () => {
    let seed = 12345;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    let local = Buffer.alloc(0);
    const attr = await client.create('/mix.bin', 0o100644);
    const ino = attr.ino;
    for (let step = 0; step < 60; step++) {
      const op = rand(4);
      if (op === 0 || local.length === 0) {
        // overwrite somewhere in (or just past) the file
        const off = rand(local.length + 1 + 100_000);
        const data = randomBytes(1 + rand(700_000));
        await client.write(ino, off, data);
        const grown = Buffer.alloc(Math.max(local.length, off + data.length));
        local.copy(grown);
        data.copy(grown, off);
        local = grown;
      } else if (op === 1) {
        const data = randomBytes(1 + rand(300_000));
        const at = await client.append(ino, data);
        expect(at).toBe(local.length);
        local = Buffer.concat([local, data]);
      } else if (op === 2) {
        const size = rand(local.length + 1);
        await client.truncate(ino, size);
        local = local.subarray(0, size);
      } else {
        const size = local.length + rand(2_500_000);
        await client.truncate(ino, size);
        local = Buffer.concat([local, Buffer.alloc(size - local.length)]);
      }
      if (step % 10 === 9) {
        expect((await client.getattr(ino)).size).toBe(local.length);
        expect(sha(await client.read(ino, 0, local.length + 10))).toBe(sha(local));
      }
    }
    const fresh = new GfsClient({ master: c.master.addr, secretFile: c.clientKeyFile });
    expect(sha(await fresh.readFile('/mix.bin'))).toBe(sha(local));
    await fresh.close();
  });
});

describe('failures: a killed chunkserver, a corrupt block, a stalled server (1 MiB chunks)', () => {
  let c: ProcCluster;
  let client: GfsClient;
  beforeAll(async () => {
    c = await startProcCluster({ chunkservers: 4, chunkSize: 1 * MiB });
    client = new GfsClient({ master: c.master.addr, secretFile: c.clientKeyFile, dataCallTimeoutMs: 2_000 });
    await waitFor(async () => (await client.clusterStatus()).servers.filter((s) => s.state === 'alive').length === 4, '4 live chunkservers');
  });
  afterAll(async () => {
    await client?.close();
    await c?.stop();
  });

  it('after SIGKILL of one chunkserver every file still reads and new files avoid it', async () => {
    const files = new Map<string, Buffer>();
    for (let i = 0; i < 6; i++) {
      const data = randomBytes(300_000 + i * 400_000);
      await client.writeFile(`/f${i}`, data);
      files.set(`/f${i}`, data);
    }
    const victim = c.chunkservers[0]!;
    await c.kill(victim, 'SIGKILL');
    for (const [path, data] of files) expect(sha(await client.readFile(path))).toBe(sha(data));

    const status = await waitFor(async () => {
      const s = await client.clusterStatus();
      return s.servers.some((v) => v.addr === victim.addr && v.state !== 'alive') ? s : undefined;
    }, 'the master to notice the dead server');
    const deadId = status.servers.find((v) => v.addr === victim.addr)!.serverId;
    const attr = await client.writeFile('/after-kill', randomBytes(3 * MiB));
    const chunks = await getChunks(c.master.addr, attr.ino, 0, attr.size);
    expect(chunks.chunks.length).toBe(3);
    for (const ch of chunks.chunks) {
      expect(ch.replicas.length).toBe(3);
      expect(ch.replicas.map((r) => r.serverId)).not.toContain(deadId);
    }
  });

  it('a flipped 64 KiB block on one replica is never returned, and is reported to the master', async () => {
    const data = randomBytes(1 * MiB);
    const attr = await client.writeFile('/corrupt-me', data);
    const [chunk] = (await getChunks(c.master.addr, attr.ino, 0, attr.size)).chunks;
    // Corrupt block 3 of every replica's copy but one... no: of exactly one replica.
    const live = c.chunkservers.filter((p) => p.proc.exitCode === null && p.proc.signalCode === null);
    const holder = live.find((p) => chunkFile(join(c.dir, p.name), chunk!.handle));
    expect(holder, 'a chunkserver holding the chunk').toBeDefined();
    const file = chunkFile(join(c.dir, holder!.name), chunk!.handle)!;
    const fd = openSync(file, 'r+');
    const block = Buffer.alloc(64 * 1024);
    readSync(fd, block, 0, block.length, DATA_BASE + 3 * 64 * 1024);
    for (let i = 0; i < block.length; i++) block[i]! ^= 0xff;
    writeSync(fd, block, 0, block.length, DATA_BASE + 3 * 64 * 1024);
    closeSync(fd);

    // Read many times with fresh clients so the bad replica is surely tried.
    for (let i = 0; i < 6; i++) {
      const fresh = new GfsClient({ master: c.master.addr, secretFile: c.clientKeyFile });
      expect(sha(await fresh.readFile('/corrupt-me'))).toBe(sha(data));
      await fresh.close();
    }
    // The corruption reaches the master (from the client and the chunkserver), which drops that
    // replica and re-replicates the chunk: in the end every replica holds the right bytes on disk.
    const good = data.subarray(3 * 64 * 1024, 4 * 64 * 1024);
    await waitFor(async () => {
      const now = (await getChunks(c.master.addr, attr.ino, 0, attr.size)).chunks[0]!;
      if (now.replicas.length !== 3) return false;
      return now.replicas.every((r) => {
        const p = c.chunkservers.find((x) => x.addr === r.addr);
        const f = p && chunkFile(join(c.dir, p.name), chunk!.handle);
        if (!f) return false;
        const got = Buffer.alloc(good.length);
        const fd2 = openSync(f, 'r');
        readSync(fd2, got, 0, got.length, DATA_BASE + 3 * 64 * 1024);
        closeSync(fd2);
        return got.equals(good);
      });
    }, 'the corrupt replica to be dropped and the chunk repaired', 60_000);
  });

  it('a chunkserver that stops answering mid-read hits the deadline and the read fails over', async () => {
    const data = randomBytes(2 * MiB);
    const attr = await client.writeFile('/stall', data);
    const live = c.chunkservers.filter((p) => p.proc.exitCode === null && p.proc.signalCode === null);
    const victim = live[live.length - 1]!;
    victim.proc.kill('SIGSTOP');
    try {
      const fresh = new GfsClient({ master: c.master.addr, secretFile: c.clientKeyFile, dataCallTimeoutMs: 1_500 });
      const started = Date.now();
      const back = await fresh.read(attr.ino, 0, attr.size);
      expect(sha(back)).toBe(sha(data));
      expect(Date.now() - started).toBeLessThan(60_000);
      await fresh.close();
    } finally {
      victim.proc.kill('SIGCONT');
    }
  });
});
