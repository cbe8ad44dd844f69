// The scrubber on a real chunkserver: finds a flipped block in an idle chunk (reported in the
// next heartbeat's `corrupt`), leaves recently used chunks alone, and never flags a chunk that
// is being written while it verifies.
import { open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DATA_BASE } from '../../src/chunkserver/chunk-meta.js';
import { startChunkserver, type ChunkserverHandle, type ChunkserverOptions } from '../../src/chunkserver/chunkserver.js';
import { CHECKSUM_BLOCK, MiB } from '../../src/common/limits.js';
import { call, clients, failure, pattern, read, startFakeMaster, tempDir, TEST_SECRET, until, type FakeMaster } from './helpers.js';

const chunkFile = (dir: string, h: number) => join(dir, 'chunks', (h % 256).toString(16).padStart(2, '0'), `${h}.chunk`);

async function flipByte(path: string, pos: number): Promise<void> {
  const fh = await open(path, 'r+');
  const b = Buffer.alloc(1);
  await fh.read(b, 0, 1, pos);
  b[0] = b[0]! ^ 0xff;
  await fh.write(b, 0, 1, pos);
  await fh.close();
}

function write(addr: string, handle: number, offset: number, data: Buffer): Promise<unknown> {
  return call(addr, 'Write', { handle, version: 1, offset, length: data.length, data, secondaries: [], sync: false });
}

describe('scrubber', () => {
  let master: FakeMaster;
  const dirs: string[] = [];
  const servers: ChunkserverHandle[] = [];

  async function server(opts: Partial<ChunkserverOptions>): Promise<{ cs: ChunkserverHandle; dir: string }> {
    const dir = await tempDir();
    dirs.push(dir);
    const cs = await startChunkserver({ secret: TEST_SECRET, dataDir: dir, master: master.addr, heartbeatMs: 50, ...opts });
    servers.push(cs);
    return { cs, dir };
  }

  beforeAll(async () => {
    master = await startFakeMaster();
  });

  afterAll(async () => {
    await Promise.all(servers.map((s) => s.stop()));
    await master.stop();
    clients.close();
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('finds a flipped block in an idle chunk and reports it in the next heartbeat', async () => {
    const { cs, dir } = await server({ scrubBytesPerSec: 512 * MiB, scrubIdleMs: 300, scrubPassPauseMs: 20 });
    const data = pattern(2 * MiB + 5000, 2);
    await write(cs.addr, 71, 0, data);
    await write(cs.addr, 72, 0, pattern(100_000, 3));
    // Both are verified once idle.
    await until(() => cs.scrubStats.chunksVerified >= 2, 'first verification of the idle chunks');
    expect(cs.scrubStats.corruptFound).toBe(0);

    await flipByte(chunkFile(dir, 71), DATA_BASE + 9 * CHECKSUM_BLOCK + 100);
    await until(() => master.beats.some((b) => b.serverId === cs.serverId && b.corrupt.includes(71)), 'corrupt 71 in a heartbeat');
    expect(cs.scrubStats).toMatchObject({ enabled: true, corruptFound: 1 });
    expect(cs.scrubStats.bytesVerified).toBeGreaterThan(data.length);
    // Excluded from reads from now on, and no longer in the chunk count; the other chunk is fine.
    expect((await failure(read(cs.addr, { handle: 71, version: 1, offset: 0, length: 10 }))).errno).toBe('EIO');
    expect((await read(cs.addr, { handle: 72, version: 1, offset: 0, length: MiB })).data.length).toBe(100_000);
    expect(master.beats.filter((b) => b.serverId === cs.serverId && b.corrupt.includes(72))).toEqual([]);
  });

  it('leaves chunks used within the idle time alone', async () => {
    const { cs } = await server({ scrubBytesPerSec: 512 * MiB, scrubIdleMs: 1_500, scrubPassPauseMs: 20 });
    await write(cs.addr, 81, 0, pattern(300_000, 4));
    await until(() => cs.scrubStats.passes >= 5, 'a few passes');
    expect(cs.scrubStats.chunksVerified).toBe(0);
    await until(() => cs.scrubStats.chunksVerified >= 1, 'verification once idle', 5_000);
  });

  it('never flags a chunk that is being written while it is scrubbed', async () => {
    // Idle time 0: every chunk is scrubbed, busy or not, as fast as it can go.
    const { cs } = await server({ scrubBytesPerSec: 4096 * MiB, scrubIdleMs: 0, scrubPassPauseMs: 0 });
    const size = 2 * MiB;
    const models = new Map<number, Buffer>([
      [91, Buffer.alloc(size)],
      [92, Buffer.alloc(size)],
    ]);
    for (const [h, m] of models) await write(cs.addr, h, 0, m);
    const before = cs.scrubStats.chunksVerified;
    let seed = 1;
    const end = Date.now() + 1_500;
    const writer = async (h: number) => {
      const m = models.get(h)!;
      while (Date.now() < end) {
        // Unaligned writes of every size: blocks partly rewritten are re-checksummed.
        const len = 1 + ((seed * 7919) % (3 * CHECKSUM_BLOCK));
        const off = (seed * 104_729) % (size - len);
        const piece = pattern(len, seed++);
        await write(cs.addr, h, off, piece);
        piece.copy(m, off);
      }
    };
    await Promise.all([writer(91), writer(92)]);
    expect(cs.scrubStats.chunksVerified - before).toBeGreaterThan(4);
    expect(cs.scrubStats.corruptFound).toBe(0);
    for (const [h, m] of models) {
      const got = (await read(cs.addr, { handle: h, version: 1, offset: 0, length: size })).data;
      expect(got.equals(m)).toBe(true);
    }
    await new Promise((r) => setTimeout(r, 150)); // a few more heartbeats
    expect(master.beats.filter((b) => b.serverId === cs.serverId && b.corrupt.length > 0)).toEqual([]);
  });

  it('is off with scrubBytesPerSec 0', async () => {
    const { cs } = await server({ scrubBytesPerSec: 0, scrubIdleMs: 0 });
    await write(cs.addr, 99, 0, pattern(1000, 1));
    await new Promise((r) => setTimeout(r, 100));
    expect(cs.scrubStats).toMatchObject({ enabled: false, passes: 0, chunksVerified: 0 });
  });
});
