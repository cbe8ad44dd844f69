// Writes a byte range of a file: split into chunk pieces run in parallel (bounded). Each piece
// goes to the chunk's replicas as GFS does: data pushed along a chain of replicas (or inline
// when small), then a write at the lease-holding primary, which applies it in serial order
// on every replica. A failed piece is retried with a fresh lease from the master.
import { randomUUID } from 'node:crypto';
import { GfsError } from '../common/errors.js';
import { retry } from '../common/deadline.js';
import type { TaskLimit } from '../common/task-limit.js';
import { INLINE_WRITE_MAX } from '../common/limits.js';
import type { Logger } from '../common/logger.js';
import type { ChunkRpc, ReplicaTarget } from './chunk-rpc.js';
import type { ChunkLocator } from './chunk-locator.js';
import type { ChunkInfo } from './location-cache.js';
import { splitRange, type Piece } from './pieces.js';
import { asRetryable } from './chunk-reader.js';

/** How long one piece keeps trying (new leases, new replica sets) before the write fails. */
export const WRITE_RETRY_WINDOW_MS = 60_000;
const WRITE_RETRY_BASE_MS = 100;
const WRITE_RETRY_MAX_DELAY_MS = 2_000;

export interface WriterDeps {
  chunks: ChunkRpc;
  locator: ChunkLocator;
  limit: TaskLimit;
  pieceBytes: number;
  /** Files whose unsynced chunks are remembered (options.ts DIRTY_FILES_MAX). */
  dirtyFilesMax: number;
  log?: Logger;
}

/** What a sync of one chunk needs. */
interface DirtyChunk {
  version: number;
  replicas: ReplicaTarget[];
  token: Buffer;
  index: number;
}
/** Replicas of every chunk written since the last fsync, per file, by chunk handle. */
type DirtyChunks = Map<number, DirtyChunk>;

/** The chunk `info` describes, as a sync needs it (its replica list copied: the cache changes). */
function dirtyEntry(info: ChunkInfo): DirtyChunk {
  return { version: info.version, replicas: info.replicas.map((r) => ({ addr: r.addr, dataAddr: r.dataAddr })), token: info.token, index: info.index };
}

export class ChunkWriter {
  /**
   * Per file, the chunks written and not yet synced (empty: known synced), least recently
   * written first. Kept across close: an fsync through a later open must still reach the
   * disks (fsync(2) covers the file's data, whichever descriptor wrote it).
   */
  private readonly dirty = new Map<number, DirtyChunks>();

  constructor(private readonly d: WriterDeps) {}

  async write(ino: number, offset: number, data: Buffer, sync: boolean): Promise<void> {
    if (data.length === 0) return;
    const { locator } = this.d;
    const chunkSize = await locator.ensureChunkSize(ino);
    const pieces = splitRange(offset, data.length, chunkSize, this.d.pieceBytes);
    // One master call covers every chunk of the range that has no usable lease in the cache.
    const missing = pieces.filter((p) => !locator.cache.forWrite(ino, p.index));
    if (missing.length > 0) {
      const first = missing[0]!;
      const last = missing[missing.length - 1]!;
      const from = first.index * chunkSize + first.chunkOffset;
      const to = last.index * chunkSize + last.chunkOffset + last.length;
      await locator.lookupWrite(ino, from, to - from);
    }
    await Promise.all(pieces.map((p) => this.d.limit(() => this.writePiece(ino, offset, p, data, sync))));
    locator.cache.growSize(ino, offset + data.length);
  }

  private writePiece(ino: number, fileOffset: number, p: Piece, data: Buffer, sync: boolean): Promise<void> {
    const { locator, chunks } = this.d;
    const buf = data.subarray(p.at, p.at + p.length);
    return retry(
      async () => {
        let info = locator.cache.forWrite(ino, p.index);
        if (!info) {
          await locator.lookupWrite(ino, fileOffset + p.at, p.length);
          info = locator.cache.forWrite(ino, p.index);
          if (!info) throw new GfsError('EIO', `master gave no lease for chunk ${p.index} of inode ${ino}`);
        }
        const primary = info.replicas.find((r) => r.serverId === info.primary);
        if (!primary) {
          locator.cache.invalidateChunk(ino, p.index);
          throw new GfsError('EHOSTDOWN', `chunk ${info.handle}: primary ${info.primary} is not among its replicas`);
        }
        const others = info.replicas.filter((r) => r !== primary);
        const primaryData = chunks.dataAddrOf(primary);
        const othersData = others.map((r) => chunks.dataAddrOf(r));
        try {
          const base = { handle: info.handle, version: info.version, offset: p.chunkOffset, length: buf.length, sync, token: info.token };
          if (primaryData && othersData.every((a) => a !== undefined)) {
            // The data channel: one pass, the primary forwards the bytes to the secondaries.
            await chunks.writeData(primaryData, { ...base, secondaries: othersData as string[] }, buf);
          } else {
            const secondaries = others.map((r) => r.addr);
            if (buf.length <= INLINE_WRITE_MAX) {
              await chunks.write(primary.addr, { ...base, secondaries, data: buf }, buf.length);
            } else {
              const dataId = randomUUID();
              await chunks.push([primary.addr, ...secondaries], dataId, buf, info.handle, info.token);
              await chunks.write(primary.addr, { ...base, secondaries, dataId }, buf.length);
            }
          }
          this.markDirty(ino, info);
        } catch (err) {
          locator.cache.invalidateChunk(ino, p.index);
          this.d.log?.warn({ ino, handle: info.handle, server: primary.addr, err: (err as Error).message }, 'chunk write failed; retrying');
          if (err instanceof GfsError && (err.code === 'EINVAL' || err.code === 'EFBIG')) throw err;
          throw asRetryable(err, `write of chunk ${info.handle}`);
        }
      },
      {
        attempts: Number.MAX_SAFE_INTEGER,
        baseDelayMs: WRITE_RETRY_BASE_MS,
        maxDelayMs: WRITE_RETRY_MAX_DELAY_MS,
        deadline: Date.now() + WRITE_RETRY_WINDOW_MS,
        retryable: (err) => err instanceof GfsError && (err.retryable || err.code === 'ESTALE'),
      },
    );
  }

  private markDirty(ino: number, info: ChunkInfo): void {
    const m = this.dirty.get(ino) ?? new Map();
    this.remember(ino, m);
    m.set(info.handle, dirtyEntry(info));
  }

  /**
   * fdatasync on every replica of every chunk of `ino` written since the last call; of every
   * chunk of the file (its `size` asked for) when what was written is not known: written by
   * another client, or forgotten past dirtyFilesMax.
   */
  async sync(ino: number, size: () => Promise<number>): Promise<void> {
    let m = this.dirty.get(ino);
    if (!m) {
      const all = await this.allChunks(ino, await size());
      m = this.dirty.get(ino) ?? new Map(); // with what was written meanwhile
      for (const [h, v] of all) if (!m.has(h)) m.set(h, v);
    }
    this.remember(ino, new Map()); // synced, once the calls below succeed
    const calls: Promise<unknown>[] = [];
    for (const [handle, { version, replicas, token, index }] of m) {
      for (const r of replicas) {
        // ENOENT: the master freed the chunk since we wrote it (truncate, unlink): nothing to sync.
        // ESTALE: our access token expired since the write: sync once more with a fresh one.
        const once = (t: Buffer) => this.d.chunks.sync(r, handle, version, t);
        calls.push(
          once(token)
            .catch(async (err) => {
              if (!(err instanceof GfsError && err.code === 'ESTALE')) throw err;
              const fresh = await this.freshToken(ino, index, handle);
              if (!fresh) throw err;
              return once(fresh);
            })
            .catch((err) => (err instanceof GfsError && err.code === 'ENOENT' ? undefined : Promise.reject(err))),
        );
      }
    }
    const results = await Promise.allSettled(calls);
    const failed = results.find((r) => r.status === 'rejected') as PromiseRejectedResult | undefined;
    if (failed) {
      // Keep them dirty: the next fsync must try again rather than claim durability.
      const again = this.dirty.get(ino) ?? new Map();
      for (const [h, v] of m) if (!again.has(h)) again.set(h, v);
      this.dirty.set(ino, again);
      throw failed.reason instanceof GfsError ? failed.reason : new GfsError('EIO', `fsync: ${String(failed.reason)}`);
    }
  }

  /** A current token for chunk `index` of `ino` (still `handle`), from a fresh lookup. */
  private async freshToken(ino: number, index: number, handle: number): Promise<Buffer | undefined> {
    const { locator } = this.d;
    try {
      const chunkSize = await locator.ensureChunkSize(ino);
      locator.cache.invalidateChunk(ino, index);
      await locator.lookupRead(ino, index * chunkSize, 1);
      const info = locator.cache.forRead(ino, index);
      return info && info.handle === handle ? info.token : undefined;
    } catch {
      return undefined;
    }
  }

  /** Records `ino`'s unsynced chunks as the most recently written, within dirtyFilesMax. */
  private remember(ino: number, m: DirtyChunks): void {
    this.dirty.delete(ino);
    this.dirty.set(ino, m);
    if (this.dirty.size > this.d.dirtyFilesMax) this.dirty.delete(this.dirty.keys().next().value!);
  }

  /** Every chunk of the first `size` bytes of `ino`, as DirtyChunks. */
  private async allChunks(ino: number, size: number): Promise<DirtyChunks> {
    const { locator } = this.d;
    const all: DirtyChunks = new Map();
    if (size === 0) return all;
    const chunkSize = await locator.ensureChunkSize(ino);
    await locator.lookupRead(ino, 0, size);
    for (let index = 0; index * chunkSize < size; index++) {
      const info = locator.cache.forRead(ino, index);
      if (info) all.set(info.handle, dirtyEntry(info));
    }
    return all;
  }
}
