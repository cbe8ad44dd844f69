// Chunks on local disk: `<dataDir>/chunks/<hh>/<handle>.chunk`, its meta (version, length,
// per-block CRC32) at the head and the bytes from DATA_BASE on, grown as written; chunks
// written by older versions keep their meta in a `<handle>.meta` sidecar (chunk-meta.ts).
// Every read verifies the blocks it touches; a bad block marks the chunk corrupt (never served
// again, reported in the next heartbeat). Mutations of one chunk are serialised by an exclusive
// lock, reads share it. Small reads and writes and the meta go straight to the page cache
// (chunk-io.ts SYNC_*_MAX), the rest through the libuv pool; open files and checksum arrays
// are LRU-cached.
// A clone is written to `<handle>.clone` (invisible: not in the chunk map, removed at start-up
// if a crash leaves it) and installed under the chunk's exclusive lock once complete and synced.
// Deleted chunks' files are emptied and kept in `<dataDir>/free` for new chunks (file-pool.ts).
import { mkdir, rename, unlink } from 'node:fs/promises';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { join } from 'node:path';
import { LRUCache } from 'lru-cache';
import { GfsError } from '../common/errors.js';
import { silentLogger, type Logger } from '../common/logger.js';
import type { ChunkReport } from '../generated/gfs/index.js';
import { BLOCK, blockCount, blockCrcsInto, crcOf, firstBadBlock, zeroCrc } from './checksum.js';
import { DATA_BASE, readMetaFile, readMetaSlotSync, syncDir, writeMetaFile, writeMetaSlotSync, type StoredMeta } from './chunk-meta.js';
import { syncPath } from '../common/sync-path.js';
import { KeyedRwLock } from './chunk-locks.js';
import { scanChunks } from './chunk-scan.js';
import { ioError, readFull, SYNC_READ_MAX, SYNC_WRITE_MAX, writeFull } from './chunk-io.js';
import { type ChunkFile, FileCache } from './file-cache.js';
import { FilePool } from './file-pool.js';
import type { Slab } from '../common/slab-pool.js';
import { checkHandle, checkRange, checkUint, MAX_CHUNK_BYTES } from './validate.js';
import { WriteBehind } from './write-behind.js';

/**
 * Memory for checksum arrays kept in memory (64 KiB for a 64 MiB chunk, 4 bytes for a small
 * file's chunk): the checksums of 1,024 full chunks. Bounded in bytes, not chunks: a count of
 * 4,096 held fewer small chunks than a 5,000-file tree has, so reading the tree back in the
 * order it was written missed on every chunk and read every meta file from disk.
 */
export const CRC_CACHE_BYTES = 64 * 1024 * 1024;
/** Bytes read at a time when a chunk's checksums are recomputed for a new block size. */
const RECHECKSUM_PIECE = 1024 * 1024;
/** What the cache counts for an entry beyond its array: key, node, array object. */
const CRC_ENTRY_OVERHEAD = 96;
/**
 * Chunks a delete removes between two turns of the event loop. Its file work (a move to the
 * pool and an emptying per file, or an unlink) is synchronous: through the thread pool each
 * call cost ~55 us of CPU against ~15 us, and an `rm -rf` of small files makes the master
 * order thousands of them while the machine is busy with the rm itself. A slice blocks the
 * loop for about a millisecond.
 */
export const DELETE_SLICE = 16;

interface ChunkState {
  version: number;
  length: number;
  corrupt: boolean;
  /** Date.now() of the last client read or mutation (0: none since start-up). */
  lastUse: number;
  /** Generation of the meta on disk (chunk-meta.ts); 0: no meta file yet. */
  metaGen: number;
  /** The chunk's file names are on disk (a directory sync since they were created). */
  namesDurable: boolean;
  /** The meta is in a `<handle>.meta` sidecar and the data at offset 0 (written by an older version). */
  sidecar: boolean;
}

/** Result of one scrubbing step (see verifyBlocks). */
export type ScrubStep =
  /** The chunk is gone or already known corrupt: nothing to verify. */
  | { status: 'gone' }
  /** The chunk was used after the given time: left for a later pass. */
  | { status: 'busy' }
  /** `bytes` verified good; `next` is the block to continue from, or -1 at the end. */
  | { status: 'ok'; bytes: number; next: number }
  /** Block `block` failed its checksum: the chunk is now marked corrupt. */
  | { status: 'bad'; bytes: number; block: number };

/** What a clone of a chunk at a version has to do on this server. */
export type CloneNeed = 'have' | 'copy';

export interface WriteOptions {
  /** Create the chunk at the request's version when this server does not have it. */
  create: boolean;
  /** fdatasync data and meta before returning. */
  sync: boolean;
}

export class ChunkStore {
  readonly chunksDir: string;
  private readonly chunks = new Map<number, ChunkState>();
  private readonly crcCache = new LRUCache<number, Uint32Array>({
    maxSize: CRC_CACHE_BYTES,
    sizeCalculation: (crcs) => crcs.byteLength + CRC_ENTRY_OVERHEAD,
  });
  private readonly loadingCrcs = new Map<number, Promise<Uint32Array>>();
  private readonly files = new FileCache();
  private readonly locks = new KeyedRwLock<number>();
  private readonly pendingCorrupt = new Set<number>();
  private readonly madeDirs = new Set<string>();
  /** Clones being written, by handle; aborted when the chunk is deleted meanwhile. */
  private readonly cloning = new Map<number, AbortController>();
  private usedBytes = 0;
  private pool!: FilePool;
  private readonly writeBehind = new WriteBehind({
    flush: (h) => this.flushBehind(h),
    failed: (h, err) => this.flushFailed(h, err),
  });

  private constructor(
    readonly dataDir: string,
    private readonly log: Logger,
  ) {
    this.chunksDir = join(dataDir, 'chunks');
  }

  /** Opens (creating if needed) the store in dataDir and loads every chunk's meta. */
  static async open(dataDir: string, log: Logger = silentLogger): Promise<ChunkStore> {
    const store = new ChunkStore(dataDir, log);
    await mkdir(store.chunksDir, { recursive: true });
    store.pool = FilePool.open(join(dataDir, 'free'), log);
    await store.scan();
    return store;
  }

  // ------------------------------------------------------------------ paths

  private shardDir(h: number): string {
    return join(this.chunksDir, (h % 256).toString(16).padStart(2, '0'));
  }
  chunkPath(h: number): string {
    return join(this.shardDir(h), `${h}.chunk`);
  }
  metaPath(h: number): string {
    return join(this.shardDir(h), `${h}.meta`);
  }
  clonePath(h: number): string {
    return join(this.shardDir(h), `${h}.clone`);
  }

  private async scan(): Promise<void> {
    const found = await scanChunks(this.chunksDir, (h) => this.shardDir(h), this.log);
    for (const dir of found.dirs) this.madeDirs.add(dir);
    for (const [h, meta] of found.chunks) {
      const sidecar = found.sidecars.has(h);
      if (meta) {
        this.chunks.set(h, { version: meta.version, length: meta.length, corrupt: false, lastUse: 0, metaGen: meta.generation, namesDurable: true, sidecar });
        this.usedBytes += meta.length;
      } else {
        this.chunks.set(h, { version: 0, length: 0, corrupt: true, lastUse: 0, metaGen: 0, namesDurable: true, sidecar });
        this.pendingCorrupt.add(h);
      }
    }
    this.log.info({ chunks: this.chunks.size, used: this.usedBytes }, 'chunk store loaded');
  }

  // ------------------------------------------------------------- reporting

  /** Chunks this server can serve (corrupt ones excluded). */
  report(): ChunkReport[] {
    const out: ChunkReport[] = [];
    for (const [handle, st] of this.chunks) if (!st.corrupt) out.push({ handle, version: st.version, length: st.length });
    return out;
  }

  get chunkCount(): number {
    let n = 0;
    for (const st of this.chunks.values()) if (!st.corrupt) n++;
    return n;
  }

  /** Background flushes of written chunk data finished (write-behind.ts). */
  get writeBehindFlushes(): number {
    return this.writeBehind.flushes;
  }

  /** Bytes of chunk data held (sum of chunk lengths). */
  get used(): number {
    return this.usedBytes;
  }

  info(h: number): { version: number; length: number; corrupt: boolean } | undefined {
    const st = this.chunks.get(h);
    return st && { ...st };
  }

  /** Corrupt handles found since the last call; give them back with requeueCorrupt if unsent. */
  takeCorrupt(): number[] {
    const out = [...this.pendingCorrupt];
    this.pendingCorrupt.clear();
    return out;
  }

  requeueCorrupt(handles: number[]): void {
    for (const h of handles) this.pendingCorrupt.add(h);
  }

  private markCorrupt(h: number, block: number): GfsError {
    const st = this.chunks.get(h);
    if (st && !st.corrupt) {
      st.corrupt = true;
      this.pendingCorrupt.add(h);
      this.crcCache.delete(h);
    }
    this.log.warn({ handle: h, block }, 'checksum mismatch: chunk marked corrupt');
    return new GfsError('EIO', `checksum mismatch in chunk ${h} block ${block}`);
  }

  // -------------------------------------------------------------- internals

  private need(h: number, version: number | undefined): ChunkState {
    const st = this.chunks.get(h);
    if (!st) throw new GfsError('ENOENT', `chunk ${h} not on this server`);
    if (st.corrupt) throw new GfsError('EIO', `chunk ${h} is corrupt on this server`);
    if (version !== undefined && st.version !== version) {
      throw new GfsError('ESTALE', `chunk ${h} is at version ${st.version}, request has version ${version}`);
    }
    return st;
  }

  /** The chunk's checksums, one per BLOCK bytes. Callers hold the chunk's lock (either kind). */
  private crcs(h: number, st: ChunkState): Promise<Uint32Array> | Uint32Array {
    const cached = this.crcCache.get(h);
    if (cached) return cached;
    if (st.metaGen === 0) return new Uint32Array(0); // nothing written yet
    // Readers share the lock: the first one loads, the others wait for it.
    let p = this.loadingCrcs.get(h);
    if (!p) {
      p = this.loadCrcs(h, st).finally(() => this.loadingCrcs.delete(h));
      this.loadingCrcs.set(h, p);
    }
    return p;
  }

  private async loadCrcs(h: number, st: ChunkState): Promise<Uint32Array> {
    let meta: StoredMeta;
    try {
      // In the chunk file, the slot the store wrote last, in one read through the open file.
      meta = st.sidecar ? await readMetaFile(this.metaPath(h)) : await this.use(h, (fh) => readMetaSlotSync(fh.fd, st.metaGen, st.length));
    } catch (err) {
      st.corrupt = true;
      this.pendingCorrupt.add(h);
      throw new GfsError('EIO', `chunk ${h}: meta unreadable: ${(err as Error).message}`);
    }
    if (meta.length !== st.length || meta.version !== st.version) {
      throw new GfsError('EIO', `chunk ${h}: meta on disk disagrees with memory`);
    }
    if (meta.block === BLOCK) {
      this.crcCache.set(h, meta.crcs);
      return meta.crcs;
    }
    const crcs = await this.rechecksum(h, meta);
    // Into the slot format 2 never used (an odd generation): a torn write there leaves the
    // old meta whole. Only this loader writes under a shared lock, and one at a time per chunk.
    await this.saveMeta(h, st, crcs, false, st.metaGen + (st.metaGen % 2 === 0 ? 1 : 2));
    this.log.info({ handle: h, from: meta.block, to: BLOCK }, 'chunk checksums moved to the current block size');
    return crcs;
  }

  /**
   * Checksums of BLOCK bytes for a chunk whose meta has another block size (written by an
   * older version), its data verified against the old ones on the way.
   */
  private async rechecksum(h: number, meta: StoredMeta): Promise<Uint32Array> {
    const out = new Uint32Array(blockCount(meta.length));
    await this.use(h, async (fh) => {
      for (let at = 0; at < meta.length; at += RECHECKSUM_PIECE) {
        const buf = await readFull(fh, at, Math.min(RECHECKSUM_PIECE, meta.length - at)).catch((err) =>
          Promise.reject(ioError(err, `chunk ${h}: read`)),
        );
        const bad = firstBadBlock(buf, at / meta.block, meta.crcs, meta.block);
        if (bad >= 0) throw this.markCorrupt(h, bad);
        blockCrcsInto(buf, at / BLOCK, out);
      }
    });
    return out;
  }

  /**
   * Writes the chunk's meta (in place, the next generation unless told). `durable`: the meta,
   * and the names of the chunk's files, are on disk on return.
   */
  private async saveMeta(h: number, st: ChunkState, crcs: Uint32Array, durable: boolean, generation = st.metaGen + 1): Promise<void> {
    try {
      if (st.sidecar) {
        // Written by an older version: its meta stays in the sidecar (which exists, so no create).
        await writeMetaFile(this.metaPath(h), { version: st.version, length: st.length, crcs }, generation, durable);
      } else {
        await this.use(h, async (fh) => {
          writeMetaSlotSync(fh.fd, { version: st.version, length: st.length, crcs }, generation);
          if (durable) await fh.datasync();
        });
      }
      // A failed write leaves metaGen as it was: the retry rewrites the same (torn) slot.
      st.metaGen = generation;
      if (durable && !st.namesDurable) {
        await syncDir(this.shardDir(h));
        st.namesDurable = true;
      }
    } catch (err) {
      this.crcCache.delete(h);
      throw ioError(err, `chunk ${h}: writing meta`);
    }
    this.crcCache.set(h, crcs);
  }

  private async ensureShardDir(h: number): Promise<void> {
    const dir = this.shardDir(h);
    if (!this.madeDirs.has(dir)) {
      await mkdir(dir, { recursive: true });
      this.madeDirs.add(dir);
    }
  }

  private async create(h: number, version: number): Promise<ChunkState> {
    const st = await this.createInMemory(h, version);
    await this.saveMeta(h, st, new Uint32Array(0), false);
    return st;
  }

  /**
   * A new empty chunk whose meta is not written yet: the first write writes it (one meta write
   * per new chunk instead of two). Until then a crash leaves at most a data file without meta,
   * which the start-up scan removes.
   */
  private async createInMemory(h: number, version: number): Promise<ChunkState> {
    await this.ensureShardDir(h);
    // The data file comes from the pool when it has one; otherwise its first open creates it.
    this.pool.take(this.chunkPath(h));
    const st: ChunkState = { version, length: 0, corrupt: false, lastUse: Date.now(), metaGen: 0, namesDurable: false, sidecar: false };
    this.chunks.set(h, st);
    this.crcCache.set(h, new Uint32Array(0));
    this.log.debug({ handle: h, version }, 'chunk created');
    return st;
  }

  /** Reads [start, start+n) of the chunk file and verifies it against the old checksums. */
  private async readVerified(h: number, fh: ChunkFile, crcs: Uint32Array, block: number, n: number, into?: Buffer): Promise<Buffer> {
    if (n <= SYNC_READ_MAX) return this.blockVerifiedSync(h, fh, crcs, block, n, into);
    const buf = await readFull(fh, block * BLOCK, n, into).catch((err) => Promise.reject(ioError(err, `chunk ${h}: read`)));
    return this.verified(h, buf, block, crcs);
  }

  /**
   * readVerified, synchronously: small reads, and the block a write is about to change (most
   * likely just written, so in the page cache).
   */
  private blockVerifiedSync(h: number, fh: ChunkFile, crcs: Uint32Array, block: number, n: number, into?: Buffer): Buffer {
    let buf: Buffer;
    try {
      buf = fh.readSync(block * BLOCK, n, into);
    } catch (err) {
      throw ioError(err, `chunk ${h}: read`);
    }
    return this.verified(h, buf, block, crcs);
  }

  private verified(h: number, buf: Buffer, block: number, crcs: Uint32Array): Buffer {
    const bad = firstBadBlock(buf, block, crcs);
    if (bad >= 0) throw this.markCorrupt(h, bad);
    return buf;
  }

  private use<T>(h: number, fn: (fh: ChunkFile) => Promise<T> | T): Promise<T> {
    return this.files.use(h, this.chunkPath(h), this.chunks.get(h)?.sidecar ? 0 : DATA_BASE, true, fn);
  }

  // ------------------------------------------------------------- operations

  /**
   * Bytes [offset, min(offset+length, chunk length)), every touched block verified. With
   * `lease`, the memory comes from it (the caller releases it once the bytes are sent).
   */
  async read(handle: number, version: number, offset: number, length: number, lease?: (n: number) => Slab): Promise<Buffer> {
    const h = checkHandle(handle);
    checkUint('version', version);
    checkUint('offset', offset);
    checkUint('length', length);
    return this.locks.shared(h, async () => {
      const st = this.need(h, version);
      st.lastUse = Date.now();
      if (offset >= st.length || length === 0) return Buffer.alloc(0);
      const end = Math.min(offset + length, st.length);
      const b0 = Math.floor(offset / BLOCK);
      const start = b0 * BLOCK;
      const stop = Math.min(Math.ceil(end / BLOCK) * BLOCK, st.length);
      const crcs = await this.crcs(h, st);
      const into = lease?.(stop - start).buf;
      const buf = await this.use(h, (fh) => this.readVerified(h, fh, crcs, b0, stop - start, into));
      return buf.subarray(offset - start, end - start);
    });
  }

  /** Writes data at offset; returns the chunk length after the write. */
  async write(handle: number, version: number, offset: number, data: Uint8Array, opts: WriteOptions): Promise<number> {
    const h = checkHandle(handle);
    checkUint('version', version);
    checkRange(h, offset, data.length);
    return this.locks.exclusive(h, async () => {
      let st = this.chunks.get(h);
      const fresh = !st && !!opts.create && data.length > 0;
      if (fresh) st = await this.createInMemory(h, version);
      else if (!st && opts.create) st = await this.create(h, version);
      else st = this.need(h, version);
      st!.lastUse = Date.now();
      if (data.length === 0) {
        if (opts.sync) await this.syncLocked(h);
        return st!.length;
      }
      try {
        return await this.applyWrite(h, st!, offset, data, opts.sync);
      } catch (err) {
        if (fresh) {
          this.files.forget(h); // the next create takes another file from the pool
          this.chunks.delete(h);
          this.crcCache.delete(h);
        }
        throw err;
      }
    });
  }

  private async applyWrite(h: number, st: ChunkState, off: number, data: Uint8Array, sync: boolean): Promise<number> {
    const cur = st.length;
    const end = off + data.length;
    const newLen = Math.max(cur, end);
    const crcs = await this.crcs(h, st);
    const next = new Uint32Array(blockCount(newLen));
    next.set(crcs);
    const b0 = Math.floor(Math.min(off, cur) / BLOCK);
    const b1 = Math.floor((end - 1) / BLOCK);
    await this.use(h, async (fh) => {
      // Checksums first: blocks only partly overwritten are read and verified before any byte
      // changes on disk, so a bad old block fails the write and leaves the chunk as it was.
      for (let b = b0; b <= b1; b++) {
        const bs = b * BLOCK;
        const be = Math.min(bs + BLOCK, newLen);
        const oldEnd = Math.min(bs + BLOCK, cur);
        if (off <= bs && end >= be) {
          next[b] = crcOf(data.subarray(bs - off, be - off));
        } else if (oldEnd <= bs && (end <= bs || off >= be)) {
          next[b] = zeroCrc(be - bs);
        } else {
          const blk = Buffer.alloc(be - bs);
          if (oldEnd > bs) this.blockVerifiedSync(h, fh, crcs, b, oldEnd - bs).copy(blk);
          const s = Math.max(off, bs);
          const e = Math.min(end, be);
          if (e > s) blk.set(data.subarray(s - off, e - off), s - bs);
          next[b] = crcOf(blk);
        }
      }
      try {
        if (off > cur) await fh.truncate(cur); // the gap reads as zeros, whatever was past cur
        if (data.length <= SYNC_WRITE_MAX) fh.writeSync(data, off);
        else await writeFull(fh, data, off);
      } catch (err) {
        throw ioError(err, `chunk ${h}: write`);
      }
    });
    st.length = newLen;
    this.usedBytes += newLen - cur;
    await this.saveMeta(h, st, next, false);
    if (sync) await this.syncLocked(h);
    else this.writeBehind.wrote(h, data.length);
    return newLen;
  }

  /**
   * A background flush of chunk h's data, without its lock: writes go on meanwhile. Skipped
   * when the chunk is gone; the check and the file's open are one synchronous step, so a
   * deleted chunk's file is never opened (and so re-created) here.
   */
  private async flushBehind(h: number): Promise<boolean> {
    const st = this.chunks.get(h);
    if (!st || st.corrupt) return false;
    await this.use(h, (fh) => fh.datasync());
    return true;
  }

  /**
   * A failed background flush may have taken the error that the chunk's next fsync would
   * report (the kernel reports a writeback error once per open file), so the data is not
   * known to be on disk: the chunk is marked corrupt, refused from now on and re-replicated
   * from the other replicas.
   */
  private flushFailed(h: number, err: unknown): void {
    const st = this.chunks.get(h);
    this.log.error({ handle: h, err }, 'background flush of chunk data failed: chunk marked corrupt');
    if (!st || st.corrupt) return;
    st.corrupt = true;
    this.pendingCorrupt.add(h);
    this.crcCache.delete(h);
  }

  /** Master's version bump on lease grant; creates an empty chunk at newVersion if absent. */
  async setVersion(handle: number, oldVersion: number, newVersion: number): Promise<void> {
    const h = checkHandle(handle);
    checkUint('old version', oldVersion);
    checkUint('new version', newVersion);
    await this.locks.exclusive(h, async () => {
      const st = this.chunks.get(h);
      if (!st) {
        await this.create(h, newVersion);
        return;
      }
      this.need(h, undefined);
      st.lastUse = Date.now();
      if (st.version === newVersion) return;
      if (st.version !== oldVersion) {
        throw new GfsError('ESTALE', `chunk ${h} is at version ${st.version}, expected ${oldVersion} or ${newVersion}`);
      }
      const crcs = await this.crcs(h, st);
      st.version = newVersion;
      await this.saveMeta(h, st, crcs, true);
    });
  }

  /** Sets the chunk's length (cut or zero-filled) and its version. */
  async truncate(handle: number, version: number, length: number): Promise<void> {
    const h = checkHandle(handle);
    checkUint('version', version);
    checkRange(h, 0, length);
    await this.locks.exclusive(h, async () => {
      const st = this.chunks.get(h) ?? (await this.create(h, version));
      this.need(h, undefined);
      if (st.version > version) {
        throw new GfsError('ESTALE', `chunk ${h} is at version ${st.version}, truncate has older version ${version}`);
      }
      st.lastUse = Date.now();
      const cur = st.length;
      const crcs = await this.crcs(h, st);
      const next = new Uint32Array(blockCount(length));
      next.set(crcs.subarray(0, Math.min(crcs.length, next.length)));
      await this.use(h, async (fh) => {
        const edge = Math.min(cur, length); // the block holding this offset may change its checksum
        const b = Math.floor(edge / BLOCK);
        if (edge % BLOCK !== 0 || (length > cur && b < next.length)) {
          const bs = b * BLOCK;
          const blk = Buffer.alloc(Math.min(bs + BLOCK, length) - bs);
          const oldEnd = Math.min(bs + BLOCK, cur);
          if (oldEnd > bs) {
            const old = await this.readVerified(h, fh, crcs, b, oldEnd - bs);
            old.copy(blk, 0, 0, Math.min(old.length, blk.length));
          }
          next[b] = crcOf(blk);
        }
        for (let k = b + 1; k < next.length && length > cur; k++) next[k] = zeroCrc(Math.min(BLOCK, length - k * BLOCK));
        try {
          await fh.truncate(Math.min(cur, length)); // drops anything stale past the old end
          if (length > cur) await fh.truncate(length);
        } catch (err) {
          throw ioError(err, `chunk ${h}: truncate`);
        }
      });
      st.length = length;
      st.version = version;
      this.usedBytes += length - cur;
      await this.saveMeta(h, st, next, true);
    });
  }

  /** Removes chunks and their meta; unknown or malformed handles are ignored. */
  async delete(handles: readonly unknown[]): Promise<number> {
    let removed = 0;
    let n = 0;
    for (const raw of handles) {
      if (typeof raw !== 'number' || !Number.isSafeInteger(raw) || raw <= 0) continue;
      const h = raw;
      if (++n % DELETE_SLICE === 0) await yieldToLoop();
      await this.locks.exclusive(h, async () => {
        // A clone of this chunk still being copied here must not appear after the delete.
        this.cloning.get(h)?.abort(new GfsError('ENOENT', `chunk ${h} was deleted on this server during the clone`));
        const st = this.chunks.get(h);
        if (!st) return;
        this.files.forget(h);
        this.writeBehind.settled(h);
        this.chunks.delete(h);
        this.crcCache.delete(h);
        this.usedBytes -= st.length;
        removed++;
        // Meta first: a chunk file left without meta is removed at the next start.
        if (st.sidecar) this.pool.recycle(this.metaPath(h));
        this.pool.recycle(this.chunkPath(h), st.length);
        this.log.debug({ handle: h }, 'chunk deleted');
      });
    }
    return removed;
  }

  /** fdatasync of the chunk file and its meta. */
  async sync(handle: number, version: number): Promise<void> {
    const h = checkHandle(handle);
    checkUint('version', version);
    await this.locks.exclusive(h, async () => {
      // Data written at `version` is still in the chunk after a later version bump (a lease
      // grant or a truncate), so a newer stored version syncs too; only an older one is stale.
      const st = this.need(h, undefined);
      if (st.version < version) throw new GfsError('ESTALE', `chunk ${h} is at version ${st.version}, older than ${version}`);
      await this.syncLocked(h);
    });
  }

  /**
   * Every write already wrote the meta (in the page cache), so a sync flushes what is there:
   * the chunk file (data and meta; a sidecar beside it) and, while the chunk's names are new,
   * their directory, all at once. Done one after another, with a fresh durable meta write in
   * between, this took ~15 ms (four flushes) and was the bulk of every fsync on the mount. A
   * crash part-way leaves new checksums with old data or the reverse: the chunk then fails its
   * checksums and is re-replicated, as with any torn write that was never acknowledged.
   */
  private async syncLocked(h: number): Promise<void> {
    try {
      const st = this.chunks.get(h)!;
      // A new chunk nothing was written to has no meta yet: written here, synced below.
      if (st.metaGen === 0) await this.saveMeta(h, st, await this.crcs(h, st), false);
      const data = this.use(h, (fh) => fh.datasync());
      const names = st.namesDurable ? undefined : syncDir(this.shardDir(h));
      await Promise.all([data, st.sidecar ? syncPath(this.metaPath(h), true) : undefined, names]);
      st.namesDurable = true;
      this.writeBehind.settled(h);
    } catch (err) {
      throw ioError(err, `chunk ${h}: sync`);
    }
  }

  // ------------------------------------------------------------------ clones

  /**
   * What a clone of chunk h at `version` must do here: 'have' when this server already holds
   * a good copy at that version; 'copy' when it holds nothing, an older version or a corrupt
   * copy (replaced on install). A good copy at a newer version refuses with ESTALE.
   */
  cloneNeed(h: number, version: number): CloneNeed {
    const st = this.chunks.get(h);
    if (!st || st.corrupt || st.version < version) return 'copy';
    if (st.version === version) return 'have';
    throw new GfsError('ESTALE', `chunk ${h} is at version ${st.version} on this server, clone asks for older version ${version}`);
  }

  /**
   * Reserves `<handle>.clone` for a clone of h (one at a time per chunk), its data to be
   * written from `base` on. The signal aborts when the chunk is deleted on this server
   * meanwhile. Pair with endClone.
   */
  async beginClone(h: number): Promise<{ path: string; base: number; signal: AbortSignal }> {
    if (this.cloning.has(h)) throw new GfsError('EAGAIN', `chunk ${h}: a clone is already being written here`);
    const ac = new AbortController();
    this.cloning.set(h, ac);
    try {
      await this.ensureShardDir(h);
    } catch (err) {
      this.cloning.delete(h);
      throw ioError(err, `chunk ${h}: clone directory`);
    }
    return { path: this.clonePath(h), base: DATA_BASE, signal: ac.signal };
  }

  /**
   * Makes a complete, synced clone file visible as chunk h at `version` with the given
   * checksums. Atomic: the meta goes into the clone file durably, then the file takes the
   * chunk's name. A copy it replaces that keeps a sidecar loses the sidecar first (a crash
   * in between leaves its data without meta, which start-up removes). Returns false (and
   * leaves the temp file for endClone) when a good copy at `version` appeared meanwhile.
   */
  async installClone(h: number, version: number, length: number, crcs: Uint32Array): Promise<boolean> {
    if (crcs.length !== blockCount(length)) throw new GfsError('EIO', `chunk ${h}: clone has ${crcs.length} checksums for ${length} bytes`);
    return this.locks.exclusive(h, async () => {
      const ac = this.cloning.get(h);
      if (!ac) throw new GfsError('EIO', `chunk ${h}: no clone in progress to install`);
      if (ac.signal.aborted) throw ac.signal.reason;
      if (this.cloneNeed(h, version) === 'have') return false;
      const old = this.chunks.get(h);
      if (old) {
        // Replacing a stale or corrupt copy: it stops existing before the new one appears.
        this.files.forget(h);
        this.writeBehind.settled(h);
        this.chunks.delete(h);
        this.crcCache.delete(h);
        this.pendingCorrupt.delete(h);
        this.usedBytes -= old.length;
        // A sidecar left behind would make the new file read as old-layout data at start-up.
        if (old.sidecar) await unlink(this.metaPath(h)).catch((err) => (err?.code === 'ENOENT' ? undefined : Promise.reject(ioError(err, `chunk ${h}: removing old meta`))));
      }
      try {
        await writeMetaFile(this.clonePath(h), { version, length, crcs }, 1, true);
        await rename(this.clonePath(h), this.chunkPath(h));
        await syncDir(this.shardDir(h)); // the rename
      } catch (err) {
        await unlink(this.chunkPath(h)).catch(() => undefined);
        throw ioError(err, `chunk ${h}: installing clone`);
      }
      this.chunks.set(h, { version, length, corrupt: false, lastUse: Date.now(), metaGen: 1, namesDurable: true, sidecar: false });
      this.crcCache.set(h, crcs);
      this.usedBytes += length;
      this.log.debug({ handle: h, version, length }, 'clone installed');
      return true;
    });
  }

  /** Ends a clone begun with beginClone: removes its temp file if still there. */
  async endClone(h: number): Promise<void> {
    this.cloning.delete(h);
    await unlink(this.clonePath(h)).catch(() => undefined);
  }

  // --------------------------------------------------------------- scrubbing

  /**
   * Handles of good chunks not read or written for at least idleMs, longest idle first
   * (idleMs 0: every good chunk).
   */
  scrubCandidates(idleMs: number, now = Date.now()): number[] {
    const out: Array<[number, number]> = [];
    for (const [h, st] of this.chunks) {
      if (!st.corrupt && (idleMs <= 0 || now - st.lastUse >= idleMs)) out.push([h, st.lastUse]);
    }
    out.sort((a, b) => a[1] - b[1] || a[0] - b[0]);
    return out.map(([h]) => h);
  }

  /**
   * Verifies up to maxBytes of chunk h from block `first` (whole blocks) against its
   * checksums, under the chunk's shared lock, so no write is half done while it reads. With
   * `unusedSince`, a chunk read or written after that time is reported busy and not read. A bad
   * block marks the chunk corrupt (excluded from reads, reported in the next heartbeat).
   */
  async verifyBlocks(h: number, first: number, maxBytes: number, unusedSince?: number): Promise<ScrubStep> {
    return this.locks.shared(h, async () => {
      const st = this.chunks.get(h);
      if (!st || st.corrupt) return { status: 'gone' };
      if (unusedSince !== undefined && st.lastUse > unusedSince) return { status: 'busy' };
      const start = first * BLOCK;
      if (start >= st.length) return { status: 'ok', bytes: 0, next: -1 };
      const blocks = Math.max(1, Math.floor(maxBytes / BLOCK));
      const end = Math.min(st.length, start + blocks * BLOCK);
      const crcs = await this.crcs(h, st);
      const buf = await this.use(h, (fh) => readFull(fh, start, end - start)).catch((err) =>
        Promise.reject(ioError(err, `chunk ${h}: scrub read`)),
      );
      const bad = firstBadBlock(buf, first, crcs);
      if (bad >= 0) {
        this.markCorrupt(h, bad);
        return { status: 'bad', bytes: (bad - first) * BLOCK, block: bad };
      }
      return { status: 'ok', bytes: buf.length, next: end >= st.length ? -1 : first + blocks };
    });
  }

  async close(): Promise<void> {
    for (const ac of this.cloning.values()) ac.abort(new GfsError('EIO', 'chunk store closing'));
    await this.writeBehind.idle();
    await this.files.closeAll();
    await this.pool.idle();
  }
}

export { MAX_CHUNK_BYTES };
