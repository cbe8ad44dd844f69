// A directory larger than one ReadDir page (4,096 entries) is read page by page and handed
// on as one packed listing: every name once, in name order, each with its own attributes.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GfsClient } from '../../src/client/client.js';
import { DirImage } from '../../src/fuse/dir-image.js';
import { type MasterHandle, startMaster } from '../../src/master/master.js';

const N = 4_500;
let dataDir: string;
let m: MasterHandle;
let c: GfsClient;

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'gfs-readdir-'));
  m = await startMaster({ dataDir, port: 0, chunkSize: 64 * 1024 });
  c = new GfsClient({ master: m.addr, secretFile: m.clientKeyFile, masterRetryWindowMs: 20_000 });
  await c.mkdir('/big', 0o40755);
  for (let i = 0; i < N; i += 500) {
    await Promise.all(Array.from({ length: Math.min(500, N - i) }, (_, k) => c.create(`/big/n${String(i + k).padStart(5, '0')}-é`, 0o100600 | ((i + k) % 2) * 0o44)));
  }
  await c.mkdir('/big/zz-dir', 0o40750);
}, 120_000);

afterAll(async () => {
  await c?.close();
  await m?.stop();
  await rm(dataDir, { recursive: true, force: true });
});

describe('ReadDir past one page', () => {
  it('lists every name once, in order, with its own attributes', async () => {
    const want = [...Array.from({ length: N }, (_, i) => `n${String(i).padStart(5, '0')}-é`), 'zz-dir'];
    const listing = await c.readdir('/big');
    expect(listing.map((e) => e.name)).toEqual(want);
    expect(listing.slice(0, N).every((e, i) => (e.attr.mode & 0o777) === (0o600 | (i % 2) * 0o44))).toBe(true);
    expect(new Set(listing.map((e) => e.attr.ino)).size).toBe(N + 1);
    // Every field as a getattr gives it, for a file on either page and a directory.
    for (const i of [0, 4_200, N]) expect(listing[i]!.attr).toEqual(await c.getattr(`/big/${want[i]}`));

    const packed = await c.readdirPacked('/big');
    const img = new DirImage(packed.records, 0, Date.now());
    expect(img.count).toBe(N + 1);
    expect([img.name(0), img.name(N)]).toEqual([want[0], want[N]]);
    expect(img.ino(4_100)).toBe(listing[4_100]!.attr.ino);
    expect(img.indexOfName(want[4_321]!)).toBe(4_321);
    expect(packed.dir?.ino).toBe((await c.getattr('/big')).ino);
  });

  it('answers a client that does not ask for records (one from before them) with entries', async () => {
    type Reply = { entries: Array<{ name: string; attr: { ino: number } }>; records: Buffer };
    const call = (c as unknown as { call(method: string, req: object, idempotent: boolean): Promise<Reply> }).call.bind(c);
    const r = await call('ReadDir', { path: '/big', after: 'n04497-é', limit: 10 }, true);
    expect(r.records.length).toBe(0);
    expect(r.entries.map((e) => e.name)).toEqual(['n04498-é', 'n04499-é', 'zz-dir']);
    expect(r.entries[2]!.attr.ino).toBe((await c.getattr('/big/zz-dir')).ino);
  });
});
