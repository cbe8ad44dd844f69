// Asks the master where chunks are, in batches, with one request in flight per chunk range
// (concurrent pieces of one file share a lookup instead of stampeding the master).
import type { GetChunksReply__Output, GetChunksRequest } from '../generated/gfs/index.js';
import type { MasterRpc } from './master-rpc.js';
import { LocationCache, type ChunkInfo } from './location-cache.js';
import { LOOKUP_AHEAD_CHUNKS } from './options.js';

export class ChunkLocator {
  /** Learned from the first master answer; every file of a cluster has the same chunk size. */
  chunkSize = 0;
  private readonly inflight = new Map<string, Promise<GetChunksReply__Output>>();
  /** Read lookups in flight, each with the cache update it ends with. */
  private readonly readLookups = new Map<string, Promise<void>>();

  /**
   * `who`: the client id (files it opened may be read/written as the open allowed) and the
   * cred the master checks otherwise, both sent with every lookup (permissions.ts).
   */
  constructor(
    private readonly master: MasterRpc,
    readonly cache: LocationCache,
    private readonly who: () => Pick<GetChunksRequest, 'clientId' | 'cred'> = () => ({}),
  ) {}

  private getChunks(req: GetChunksRequest): Promise<GetChunksReply__Output> {
    const key = `${req.ino}:${req.offset}:${req.length}:${req.forWrite ? 'w' : 'r'}`;
    let p = this.inflight.get(key);
    if (!p) {
      p = this.master
        .call<GetChunksRequest, GetChunksReply__Output>('GetChunks', { ...req, ...this.who() }, !req.forWrite)
        .finally(() => this.inflight.delete(key));
      this.inflight.set(key, p);
    }
    return p;
  }

  /** Makes the cache hold size and read locations for [offset, offset+length) and some ahead. */
  lookupRead(ino: number, offset: number, length: number): Promise<void> {
    // Whole windows of LOOKUP_AHEAD_CHUNKS chunks, so that reads at different offsets of one
    // window share one request and one cache update: 10,000 reads in flight whose size had
    // just expired made 10,000 lookups.
    let start = offset;
    let span = Math.max(length, 1);
    if (this.chunkSize) {
      const window = LOOKUP_AHEAD_CHUNKS * this.chunkSize;
      start = Math.floor(offset / window) * window;
      span = Math.ceil((offset + span - start) / window) * window;
    }
    const key = `${ino}:${start}:${span}`;
    let p = this.readLookups.get(key);
    if (!p) {
      p = this.getChunks({ ino, offset: start, length: span, forWrite: false })
        .then((reply) => {
          this.learn(reply);
          const first = Math.floor(start / reply.chunkSize);
          const last = Math.floor((start + span - 1) / reply.chunkSize);
          this.cache.setSize(ino, reply.fileSize);
          this.cache.storeRead(ino, first, last, reply.chunks);
        })
        .finally(() => this.readLookups.delete(key));
      this.readLookups.set(key, p);
    }
    return p;
  }

  /** Chunks with a valid lease (allocated if missing) for [offset, offset+length). */
  async lookupWrite(ino: number, offset: number, length: number): Promise<ChunkInfo[]> {
    const reply = await this.getChunks({ ino, offset, length, forWrite: true });
    this.learn(reply);
    this.cache.storeWrite(ino, reply.chunks);
    return reply.chunks;
  }

  /** The chunk size, asking the master once if nothing has told us yet. */
  async ensureChunkSize(ino: number): Promise<number> {
    // length 0: the chunk size without asking for access (a write-only opener may not read).
    if (!this.chunkSize) this.learn(await this.getChunks({ ino, offset: 0, length: 0, forWrite: false }));
    return this.chunkSize;
  }

  /** Read locations the master sent with another reply (Open), covering [0, its size). */
  learnRead(ino: number, reply: GetChunksReply__Output): void {
    this.learn(reply);
    this.cache.setSize(ino, reply.fileSize);
    if (reply.fileSize > 0 && reply.chunkSize > 0) {
      const last = Math.min(Math.floor((reply.fileSize - 1) / reply.chunkSize), Math.max(0, ...reply.chunks.map((c) => c.index)));
      this.cache.storeRead(ino, 0, last, reply.chunks);
    }
  }

  /** Write locations the master sent with another reply (Create of a new file). */
  learnWrite(ino: number, chunks: ChunkInfo[], chunkSize: number): void {
    if (chunkSize > 0) this.chunkSize = chunkSize;
    this.cache.storeWrite(ino, chunks);
  }

  private learn(reply: GetChunksReply__Output): void {
    if (reply.chunkSize > 0) this.chunkSize = reply.chunkSize;
  }
}
