// Chunk metadata operations: locating chunks, allocating them, granting leases (with version
// bumps on the replicas), committing write sizes, append reservations, truncating a chunk,
// and dropping bad replicas.
import pLimit from 'p-limit';
import { GfsError, einval, eisdir } from '../common/errors.js';
import { MAX_FILE_SIZE } from '../common/limits.js';
import type { MasterCore } from './core.js';
import { type Inode, isDir } from './inode.js';
import { LEASE_MS, type Lease } from './lease-table.js';
import type { ChunkMeta } from './chunk-table.js';
import { now } from './time.js';

/** Most chunks one GetChunks call covers (a longer range is cut; the client asks again). */
export const MAX_CHUNKS_PER_CALL = 4096;
/** Lease grants (each up to one SetVersion per replica) in flight for one GetChunks call. */
const GRANT_CONCURRENCY = 16;

export interface ChunkLocationOut {
  serverId: string;
  addr: string;
  load: number;
  dataAddr: string;
}

export interface ChunkInfoOut {
  index: number;
  handle: number;
  version: number;
  replicas: ChunkLocationOut[];
  primary: string;
  leaseExpiryMs: number;
  /** Version 1 and never reported by a replica: possibly never written (proto ChunkInfo). */
  unwritten: boolean;
}

export interface GetChunksOut {
  chunks: ChunkInfoOut[];
  fileSize: number;
  chunkSize: number;
}

export const noLiveServers = () => new GfsError('EHOSTDOWN', 'no live chunkservers');

export class ChunkOps {
  constructor(private readonly core: MasterCore) {}

  /**
   * Locations of the chunks covering [offset, offset + length). Like a noatime mount, a read
   * lookup does not update atime (it would turn every read into a logged mutation).
   */
  async getChunks(ino: number, offset: number, length: number, forWrite: boolean): Promise<GetChunksOut> {
    const inode = this.fileByIno(ino);
    checkCount(offset, 'offset');
    checkCount(length, 'length');
    const cs = this.core.cfg.chunkSize;
    const end = offset + length;
    if (forWrite && end > MAX_FILE_SIZE) throw new GfsError('EFBIG', `write past the largest file size (${MAX_FILE_SIZE} bytes)`);
    if (length === 0 || offset >= MAX_FILE_SIZE) return { chunks: [], fileSize: inode.size, chunkSize: cs };
    const first = Math.floor(offset / cs);
    const last = Math.min(Math.floor((Math.min(end, MAX_FILE_SIZE) - 1) / cs), first + MAX_CHUNKS_PER_CALL - 1);

    if (forWrite) {
      this.allocateMissing(inode, first, last);
      const handles: number[] = [];
      for (let i = first; i <= last; i++) {
        const h = inode.chunks!.get(i);
        if (h !== undefined) handles.push(h);
      }
      const limit = pLimit(GRANT_CONCURRENCY);
      await Promise.all(handles.map((h) => limit(() => this.ensureLease(h))));
    }
    // State may have moved during the awaits: answer from what is true now.
    const current = this.fileByIno(ino);
    const chunks: ChunkInfoOut[] = [];
    for (let i = first; i <= last; i++) {
      const handle = current.chunks!.get(i);
      const meta = handle === undefined ? undefined : this.core.chunks.get(handle);
      if (meta) chunks.push(this.describe(meta, forWrite));
    }
    // A client is waiting for these: below their goal, they go to the front of the repair queue.
    for (const c of chunks) if (c.replicas.length < current.goal) this.core.repair.noteWaiting(c.handle);
    return { chunks, fileSize: current.size, chunkSize: cs };
  }

  /**
   * The first chunk of a file just created to be written: allocated and leased now, so the
   * client's first write needs no lookup. Undefined when the file already has one.
   */
  allocateFirst(inode: Inode): ChunkInfoOut | undefined {
    if (!inode.chunks || inode.chunks.has(0)) return undefined;
    // Nowhere to place it: the create still succeeds; the first write asks and gets the error.
    if (!this.core.registry.place(inode.goal).length) return undefined;
    this.allocateMissing(inode, 0, 0);
    const meta = this.core.chunks.get(inode.chunks.get(0)!);
    return meta && this.describe(meta, true);
  }

  /** size = max(size, end); mtime = ctime = now. */
  commitWrite(ino: number, end: number): Inode {
    const inode = this.fileByIno(ino);
    checkCount(end, 'end');
    if (end > MAX_FILE_SIZE) throw new GfsError('EFBIG', `file size ${end} past the largest (${MAX_FILE_SIZE})`);
    this.core.mutate({ op: 'setsize', ino, size: Math.max(inode.size, end), time: now() });
    return inode;
  }

  /** Reserves [size, size + length) for an append; returns its offset. */
  reserveAppend(ino: number, length: number): number {
    const inode = this.fileByIno(ino);
    checkCount(length, 'length');
    const offset = inode.size;
    if (length === 0) return offset;
    if (offset + length > MAX_FILE_SIZE) throw new GfsError('EFBIG', `append past the largest file size (${MAX_FILE_SIZE})`);
    this.core.mutate({ op: 'setsize', ino, size: offset + length, time: now() });
    return offset;
  }

  /** Drops a corrupt replica and tells its server to delete it. Returns false if unknown. */
  reportBadReplica(handle: number, serverId: string, reason: string): boolean {
    const { chunks, registry, log } = this.core;
    if (registry.get(serverId)) registry.queueDelete(serverId, handle);
    if (!chunks.get(handle)) return false;
    chunks.removeReplica(handle, serverId);
    this.core.repair.noteCorrupt(handle, serverId);
    log.warn({ handle, server: serverId, reason, left: chunks.replicas(handle).length }, 'bad replica dropped');
    return true;
  }

  /**
   * Cuts chunk `handle` to `length` bytes under a new version. The caller holds the handle's
   * lock. Replicas that are not alive or fail are dropped (they keep the old version: stale).
   */
  async truncateLocked(handle: number, length: number): Promise<void> {
    const { chunks, leases, log } = this.core;
    const meta = chunks.get(handle);
    if (!meta) return;
    if (chunks.replicas(handle).length === 0 && this.core.waitingForReports()) {
      throw new GfsError('EHOSTDOWN', `no chunkserver has reported chunk ${handle} since the master restarted; try again shortly`);
    }
    leases.revoke(handle);
    const version = meta.version + 1;
    const alive = this.dropNotAlive(handle);
    // Replicas first, then the record (as in ensureLease): a crash in between leaves replicas
    // at a version the master adopts from their reports, never a logged version no replica has.
    const results = await Promise.allSettled(
      alive.map((id) => {
        const s = this.core.registry.get(id);
        return s ? this.core.calls.truncate(s.addr, handle, version, length) : Promise.reject(new Error(`server ${id} is gone`));
      }),
    );
    results.forEach((r, i) => {
      if (r.status === 'fulfilled') return;
      chunks.removeReplica(handle, alive[i]!);
      log.warn({ handle, server: alive[i], err: (r.reason as Error)?.message }, 'truncate failed; replica dropped');
    });
    const current = chunks.get(handle);
    if (current && current.version < version) this.core.mutate({ op: 'setVersion', handle, version });
  }

  /** Makes sure `handle` has a valid lease, granting a new one (version bump) if needed. */
  ensureLease(handle: number): Promise<void> {
    return this.core.leases.withLock(handle, async () => {
      const { chunks, registry, leases, log } = this.core;
      const meta = chunks.get(handle);
      if (!meta) return; // freed meanwhile; the reply is built from current state
      const lease = leases.get(handle);
      if (lease && this.leaseValid(meta, lease)) {
        lease.expiry = Date.now() + LEASE_MS; // renewal: same primary, same version
        return;
      }
      leases.revoke(handle);
      if (chunks.replicas(handle).length === 0) {
        // Within the file's committed size the chunk may hold data on servers that have not
        // reported yet (a master restart): placing it afresh would make those copies stale and
        // lose the data. The client retries until a report arrives.
        const inode = this.core.ns.get(meta.ino);
        if (inode && inode.size > meta.index * this.core.cfg.chunkSize) {
          throw new GfsError('EHOSTDOWN', `no known replica of chunk ${handle} yet (waiting for chunkserver reports)`);
        }
        // Beyond the committed size the chunk was never written: place it afresh under a new
        // version so that any copy that turns up later is stale.
        const goal = this.core.ns.get(meta.ino)?.goal ?? this.core.cfg.replication;
        const placed = registry.place(goal);
        if (!placed.length) throw noLiveServers();
        this.core.mutate({ op: 'setVersion', handle, version: meta.version + 1 });
        this.grant(meta, placed.map((s) => s.id));
        log.warn({ handle, servers: placed.map((s) => s.id) }, 'chunk had no replicas; placed afresh');
        return;
      }
      const alive = this.dropNotAlive(handle);
      if (!alive.length) throw new GfsError('EHOSTDOWN', `no live replica of chunk ${handle}`);
      const oldVersion = meta.version;
      const newVersion = oldVersion + 1;
      // Replicas learn the new version before the master records it: if none can be told, the
      // version stays and no copy becomes stale (a replica reporting a newer version than the
      // master's, after a crash in between, is adopted by the report handling).
      const results = await Promise.allSettled(
        alive.map((id) => this.core.calls.setVersion(registry.get(id)!.addr, handle, oldVersion, newVersion)),
      );
      const ok: string[] = [];
      results.forEach((r, i) => {
        const id = alive[i]!;
        if (r.status === 'fulfilled') ok.push(id);
        else {
          chunks.removeReplica(handle, id);
          log.warn({ handle, server: id, err: (r.reason as Error)?.message }, 'SetVersion failed; replica dropped');
        }
      });
      if (!chunks.get(handle)) return;
      if (!ok.length) throw new GfsError('EHOSTDOWN', `no replica of chunk ${handle} took version ${newVersion}`);
      this.core.mutate({ op: 'setVersion', handle, version: newVersion });
      this.grant(meta, ok);
    });
  }

  /** Valid = not expired, same version, and every replica of it still alive and listed. */
  leaseValid(meta: ChunkMeta, lease: Lease): boolean {
    return (
      lease.version === meta.version &&
      lease.expiry > Date.now() &&
      lease.replicas.every((s) => this.core.registry.isAlive(s) && this.core.chunks.hasReplica(meta.handle, s))
    );
  }

  private allocateMissing(inode: Inode, first: number, last: number): void {
    const missing: number[] = [];
    for (let i = first; i <= last; i++) if (!inode.chunks!.has(i)) missing.push(i);
    if (!missing.length) return;
    const goal = inode.goal;
    // Check before the first record, so a failure allocates nothing.
    if (!this.core.registry.place(goal).length) throw noLiveServers();
    for (const index of missing) {
      const placed = this.core.registry.place(goal);
      const handle = this.core.chunks.nextHandle;
      this.core.mutate({ op: 'allocChunk', ino: inode.ino, index, handle, version: 1 });
      // A fresh chunk needs no SetVersion: chunkservers create it on the first write.
      this.grant(this.core.chunks.get(handle)!, placed.map((s) => s.id));
      this.core.log.debug({ ino: inode.ino, index, handle, servers: placed.map((s) => s.id) }, 'chunk allocated');
    }
  }

  private grant(meta: ChunkMeta, servers: string[]): void {
    const { chunks, registry, leases } = this.core;
    for (const s of servers) {
      chunks.addReplica(meta.handle, s);
      registry.cancelDelete(s, meta.handle);
    }
    const byLoad = [...servers].sort((a, b) => (registry.get(a)?.load ?? 0) - (registry.get(b)?.load ?? 0));
    leases.set(meta.handle, { primary: byLoad[0]!, replicas: byLoad, version: meta.version, expiry: Date.now() + LEASE_MS });
  }

  /** Removes replicas that are not alive (they will miss a version bump) and returns the rest. */
  private dropNotAlive(handle: number): string[] {
    const alive: string[] = [];
    for (const id of this.core.chunks.replicas(handle)) {
      if (this.core.registry.isAlive(id)) alive.push(id);
      else this.core.chunks.removeReplica(handle, id);
    }
    return alive;
  }

  private describe(meta: ChunkMeta, forWrite: boolean): ChunkInfoOut {
    const { chunks, registry, leases } = this.core;
    const lease = leases.get(meta.handle);
    const valid = lease !== undefined && this.leaseValid(meta, lease);
    let ids: string[];
    if (forWrite && valid) ids = lease.replicas;
    else {
      const rank = (id: string) => (registry.stateOf(id) === 'alive' ? 0 : 1);
      ids = chunks
        .replicas(meta.handle)
        .filter((id) => registry.isLive(id))
        .sort((a, b) => rank(a) - rank(b) || (registry.get(a)?.load ?? 0) - (registry.get(b)?.load ?? 0));
    }
    const replicas = ids.map((id) => {
      const s = registry.get(id)!;
      return { serverId: id, addr: s.addr, load: s.load, dataAddr: s.dataAddr };
    });
    return {
      index: meta.index,
      handle: meta.handle,
      version: meta.version,
      replicas,
      primary: valid ? lease.primary : '',
      leaseExpiryMs: valid ? lease.expiry : 0,
      unwritten: meta.version === 1 && chunks.lengthOf(meta.handle) === undefined,
    };
  }

  private fileByIno(ino: number): Inode {
    const inode = this.core.ns.byIno(ino);
    if (isDir(inode)) throw eisdir(`inode ${ino}`);
    if (!inode.chunks) throw einval(`inode ${ino} is not a regular file`);
    return inode;
  }
}

function checkCount(n: number, what: string): void {
  if (!Number.isSafeInteger(n) || n < 0) throw einval(`bad ${what} ${n}`);
}
