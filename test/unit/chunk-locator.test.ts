// Reads in flight that all find the file size expired must not each ask the master: with
// 10,000 of them the lookups, not the reads, set the rate.
import { describe, expect, it } from 'vitest';
import { ChunkLocator } from '../../src/client/chunk-locator.js';
import { LocationCache } from '../../src/client/location-cache.js';
import type { MasterRpc } from '../../src/client/master-rpc.js';
import type { GetChunksReply__Output, GetChunksRequest } from '../../src/generated/gfs/index.js';
import { LOOKUP_AHEAD_CHUNKS } from '../../src/client/options.js';

const CHUNK = 64 * 1024 * 1024;
const FILE = 4 * CHUNK;

/** A master that answers GetChunks for one file of four chunks, after a short wait, and counts. */
function fakeMaster(): { master: MasterRpc; asked: GetChunksRequest[] } {
  const asked: GetChunksRequest[] = [];
  const master = {
    call: async (method: string, req: GetChunksRequest): Promise<GetChunksReply__Output> => {
      expect(method).toBe('GetChunks');
      asked.push(req);
      await new Promise((r) => setTimeout(r, 5));
      const first = Math.floor(Number(req.offset) / CHUNK);
      const last = Math.min(3, Math.floor((Number(req.offset) + Number(req.length) - 1) / CHUNK));
      const chunks = [];
      for (let i = first; i <= last; i++) chunks.push({ index: i, handle: 100 + i, version: 1, replicas: [], leaseExpiryMs: 0, unwritten: false, token: Buffer.alloc(0) });
      return { fileSize: FILE, chunkSize: CHUNK, chunks } as unknown as GetChunksReply__Output;
    },
  } as unknown as MasterRpc;
  return { master, asked };
}

describe('ChunkLocator.lookupRead', () => {
  it('answers a thousand concurrent lookups at different offsets of one window with one request', async () => {
    const { master, asked } = fakeMaster();
    const locator = new ChunkLocator(master, new LocationCache(30_000, 1_000));
    locator.chunkSize = CHUNK;
    await Promise.all(Array.from({ length: 1000 }, (_, i) => locator.lookupRead(7, Math.floor((i / 1000) * FILE), 4096)));
    expect(asked).toHaveLength(1);
    expect(Number(asked[0]!.offset)).toBe(0);
    expect(Number(asked[0]!.length)).toBe(LOOKUP_AHEAD_CHUNKS * CHUNK);
    expect(locator.cache.size(7)).toBe(FILE);
    for (let i = 0; i < 4; i++) expect(locator.cache.forRead(7, i)?.handle).toBe(100 + i);
    // Past the end of the file: known holes, not unknown.
    expect(locator.cache.forRead(7, 5)).toBeNull();
  });

  it('asks once per window, and covers a read that crosses into the next one', async () => {
    const { master, asked } = fakeMaster();
    const locator = new ChunkLocator(master, new LocationCache(30_000, 1_000));
    locator.chunkSize = CHUNK;
    const window = LOOKUP_AHEAD_CHUNKS * CHUNK;
    await Promise.all([locator.lookupRead(7, 10, 1), locator.lookupRead(7, window + 10, 1), locator.lookupRead(7, window + 99, 1)]);
    expect(asked.map((r) => [Number(r.offset), Number(r.length)])).toEqual([[0, window], [window, window]]);
    await locator.lookupRead(7, window - 10, 20);
    expect(asked.map((r) => [Number(r.offset), Number(r.length)]).at(-1)).toEqual([0, 2 * window]);
  });
});
