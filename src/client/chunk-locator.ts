// Asks the master where chunks are, in batches, with one request in flight per chunk range
// (concurrent pieces of one file share a lookup instead of stampeding the master).
import type { GetChunksReply__Output, GetChunksRequest } from '../generated/gfs/index.js';
import type { MasterRpc } from './master-rpc.js';
import { LocationCache, type ChunkInfo } from './location-cache.js';
import { LOOKUP_AHEAD_CHUNKS } from './options.js';

export class ChunkLocator {
  /** Learned from the first master answer; every file of a cluster has the same chunk size. */
  chunkSize = 0;
  /** Lookups in flight by what they ask; a read lookup's promise includes its cache update. */
  private readonly inflight = new Map<string, Promise<unknown>>();

  /**
   * `who`: the client id (files it opened may be read/written as the open allowed) and the
   * cred the master checks otherwise, both sent with every lookup (permissions.ts).
   */
  constructor(
    private readonly master: MasterRpc,
    readonly cache: LocationCache,
    private readonly who: () => Pick<GetChunksRequest, 'clientId' | 'cred'> = () => ({}),
  ) {}

  /** The promise in flight under `key`, or a new one from `start`. */
  private shared<T>(key: string, start: () => Promise<T>): Promise<T> {
    let p = this.inflight.get(key) as Promise<T> | undefined;
    if (!p) {
      p = start().finally(() => this.inflight.delete(key));
      this.inflight.set(key, p);
    }
    return p;
  }

  private getChunks(req: GetChunksRequest): Promise<GetChunksReply__Output> {
    return this.shared(`${req.ino}:${req.offset}:${req.length}:${req.forWrite ? 'w' : 'r'}`, () =>
      this.master.call<GetChunksRequest, GetChunksReply__Output>('GetChunks', { ...req, ...this.who() }, !req.forWrite),
    );
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
    return this.shared(`${ino}:${start}:${span}:stored`, async () => {
      const reply = await this.getChunks({ ino, offset: start, length: span, forWrite: false });
      this.learn(reply);
      const first = Math.floor(start / reply.chunkSize);
      const last = Math.floor((start + span - 1) / reply.chunkSize);
      this.cache.setSize(ino, reply.fileSize);
      this.cache.storeRead(ino, first, last, reply.chunks);
    });
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
