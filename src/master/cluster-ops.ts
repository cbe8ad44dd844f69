// Chunkserver-facing operations (Register, Heartbeat, chunk reports) and cluster-wide
// numbers (ClusterStatus, StatFs).
import { GfsError, einval } from '../common/errors.js';
import { NAME_MAX } from '../common/limits.js';
import { parseAddr } from '../common/rpc.js';
import type { ChunkOps } from './chunk-ops.js';
import type { MasterCore } from './core.js';
import { isDir, isReg } from './inode.js';
import { chunkHealth } from './replication-scheduler.js';
import { ServerRegistry, type ServerState } from './server-registry.js';

export interface ChunkReportIn {
  handle: number;
  version: number;
  /** Bytes in the replica (rebalancing and clone deadlines use it). */
  length?: number;
}

export interface RegisterIn {
  serverId: string;
  addr: string;
  dataAddr?: string;
  capacity: number;
  used: number;
  chunks: ChunkReportIn[];
}

export interface HeartbeatIn {
  serverId: string;
  addr: string;
  dataAddr?: string;
  capacity: number;
  used: number;
  load: number;
  chunks: ChunkReportIn[];
  fullReport: boolean;
  corrupt: number[];
}

export interface ServerStatusOut {
  serverId: string;
  addr: string;
  state: ServerState;
  capacity: number;
  used: number;
  load: number;
  chunks: number;
  lastHeartbeatMs: number;
}

export const STATFS_BLOCK_SIZE = 4096;
/** Failure-detector events returned by ClusterStatus (newest last). */
export const RECENT_EVENTS = 50;
/** Inode numbers are not a scarce resource; report a large fixed budget. */
const MAX_FILES = 2 ** 32;

export class ClusterOps {
  constructor(
    private readonly core: MasterCore,
    private readonly chunkOps: ChunkOps,
  ) {}

  register(req: RegisterIn): { serverId: string; heartbeatMs: number; delete: number[] } {
    checkAddr(req.addr);
    if (req.serverId && !/^[\w.:-]{1,128}$/.test(req.serverId)) throw einval(`bad server id "${req.serverId}"`);
    const serverId = req.serverId || ServerRegistry.newId();
    if (req.dataAddr) checkAddr(req.dataAddr);
    this.core.registry.upsert(serverId, req.addr, count(req.capacity), count(req.used), req.dataAddr ?? '');
    const toDelete = this.processReport(serverId, req.chunks, true);
    const pending = this.core.registry.takeDeletes(serverId);
    this.core.log.info({ server: serverId, addr: req.addr, chunks: req.chunks.length, delete: toDelete.length }, 'register');
    return { serverId, heartbeatMs: this.core.cfg.heartbeatMs, delete: [...new Set([...toDelete, ...pending])] };
  }

  heartbeat(req: HeartbeatIn): { delete: number[]; reregister: boolean } {
    const s = this.core.registry.get(req.serverId);
    if (!s) return { delete: [], reregister: true };
    // Back from the dead: its replicas may have missed versions and deletions. It comes back
    // through Register, whose full report is checked before it serves anything again.
    if (this.core.registry.stateOf(s.id) === 'dead') return { delete: [], reregister: true };
    if ((req.addr && req.addr !== s.addr) || (req.dataAddr ?? '') !== s.dataAddr) {
      checkAddr(req.addr || s.addr);
      if (req.dataAddr) checkAddr(req.dataAddr);
      this.core.registry.upsert(s.id, req.addr || s.addr, count(req.capacity), count(req.used), req.dataAddr ?? '');
    }
    this.core.registry.touch(s, { capacity: count(req.capacity), used: count(req.used), load: count(req.load) });
    const toDelete = req.fullReport ? this.processReport(s.id, req.chunks, true) : [];
    for (const handle of req.corrupt) this.chunkOps.reportBadReplica(handle, s.id, 'checksum mismatch (heartbeat)');
    const pending = this.core.registry.takeDeletes(s.id);
    return { delete: [...new Set([...toDelete, ...pending])], reregister: false };
  }

  /**
   * A server's chunk report: same version -> replica; older -> stale (delete); newer -> adopt
   * (the master lost a version bump); unknown -> orphan (delete). With `full`, chunks the
   * master thought the server had but that are not reported are forgotten, except those
   * under a live lease (a new chunk is created on the server by its first write).
   */
  processReport(serverId: string, reports: ChunkReportIn[], full: boolean): number[] {
    const { chunks, leases, log } = this.core;
    const toDelete: number[] = [];
    const seen = new Set<number>();
    for (const r of reports) {
      const meta = chunks.get(r.handle);
      seen.add(r.handle);
      if (!meta) {
        toDelete.push(r.handle);
      } else if (leases.isLocked(r.handle) && r.version === meta.version + 1) {
        // A lease grant or truncate is bumping this chunk right now (replicas first, record
        // after): the server already holds the new version; the grant lists it.
        continue;
      } else if (r.version === meta.version) {
        chunks.addReplica(r.handle, serverId);
        this.core.registry.cancelDelete(serverId, r.handle);
        if (r.length !== undefined) chunks.noteLength(r.handle, r.length);
      } else if (r.version < meta.version) {
        // A SetVersion/Truncate for exactly this bump may still be in flight: leave it alone.
        if (leases.isLocked(r.handle) && r.version === meta.version - 1) continue;
        chunks.removeReplica(r.handle, serverId);
        toDelete.push(r.handle);
        this.core.repair.noteStale(r.handle);
        log.info({ handle: r.handle, server: serverId, version: r.version, current: meta.version }, 'stale replica');
      } else {
        log.warn({ handle: r.handle, server: serverId, version: r.version, known: meta.version }, 'replica newer than master; adopting its version');
        this.core.mutate({ op: 'setVersion', handle: r.handle, version: r.version });
        leases.revoke(r.handle);
        chunks.setReplicas(r.handle, [serverId]);
      }
    }
    if (full) {
      for (const handle of chunks.handlesOn(serverId)) {
        if (seen.has(handle)) continue;
        const lease = leases.get(handle);
        if (lease && lease.expiry > Date.now() && lease.replicas.includes(serverId)) continue;
        chunks.removeReplica(handle, serverId);
      }
    }
    return toDelete;
  }

  clusterStatus() {
    const { registry, chunks, ns, cfg } = this.core;
    const servers: ServerStatusOut[] = registry.all().map((s) => ({
      serverId: s.id,
      addr: s.addr,
      state: registry.stateOf(s.id),
      capacity: s.capacity,
      used: s.used,
      load: s.load,
      chunks: chunks.countOn(s.id),
      lastHeartbeatMs: s.lastSeenWall,
    }));
    let files = 0;
    let directories = 0;
    for (const inode of ns.inodes.values()) {
      if (isDir(inode)) directories++;
      else if (isReg(inode)) files++;
    }
    // Live = alive or suspect (a suspect server's replicas are not copied yet); a chunk never
    // written (no replica, past the end of its file) is neither missing nor under-replicated.
    let underReplicated = 0;
    let missing = 0;
    for (const meta of chunks.chunks.values()) {
      const h = chunkHealth(this.core, meta);
      if (h.empty) continue;
      if (h.live === 0) missing++;
      else if (h.live < h.goal) underReplicated++;
    }
    const { repair } = this.core;
    const st = repair.stats;
    return {
      servers,
      files,
      directories,
      chunks: chunks.size,
      underReplicated,
      missing,
      chunkSize: cfg.chunkSize,
      repairBacklog: repair.backlog(),
      recentEvents: registry.events().slice(-RECENT_EVENTS),
      repair: {
        queued: repair.queue.size,
        inFlight: repair.inFlight,
        clonesStarted: st.clonesStarted,
        clonesSucceeded: st.clonesSucceeded,
        clonesFailed: st.clonesFailed,
        clonesDiscarded: st.clonesDiscarded,
        bytesCloned: st.bytesCloned,
        overReplicatedDeleted: st.overReplicatedDeleted,
        rebalanceMoves: st.rebalanceMoves,
        corruptReported: st.corruptReported,
        staleDeleted: st.staleDeleted,
        maxClones: repair.opts.maxClones,
        cloneBytesPerSec: repair.opts.cloneBytesPerSec,
        rebalanceInFlight: repair.rebalanceInFlight,
      },
      eventCounts: { ...registry.eventCounts },
    };
  }

  /** What a user can store: raw capacity of live servers divided by the replication goal. */
  statfs() {
    const { registry, ns, cfg } = this.core;
    let capacity = 0;
    let used = 0;
    for (const s of registry.all()) {
      if (!registry.isLive(s.id)) continue;
      capacity += s.capacity;
      used += s.used;
    }
    const goal = Math.max(1, cfg.replication);
    const totalBytes = Math.floor(capacity / goal);
    const usedBytes = Math.floor(used / goal);
    const files = ns.inodes.size;
    return {
      totalBytes,
      freeBytes: Math.max(0, totalBytes - usedBytes),
      usedBytes,
      files,
      freeFiles: Math.max(0, MAX_FILES - files),
      blockSize: STATFS_BLOCK_SIZE,
      nameMax: NAME_MAX,
      chunkSize: cfg.chunkSize,
    };
  }
}

function checkAddr(addr: string): void {
  try {
    parseAddr(addr);
  } catch {
    throw new GfsError('EINVAL', `bad chunkserver address "${addr}": expected HOST:PORT`);
  }
}

function count(n: number): number {
  return Number.isFinite(n) && n > 0 ? Math.floor(n) : 0;
}
