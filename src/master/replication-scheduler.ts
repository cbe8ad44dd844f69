// Self-healing on the master: the re-replication scheduler, over-replication trimming and
// rebalancing. Nothing here is persistent except the version bumps it logs (setVersion
// records); replica locations it adds or drops are, as always, rebuilt from chunkserver
// reports after a restart.
//
// Repair. Every chunk with fewer live replicas (alive or suspect servers) than its goal is in a
// priority queue: chunks a client is waiting for first of all, then fewest live replicas first,
// then arrival order. Each tick starts clones from the front while the bounds allow: at most
// `maxClones` cluster-wide, `maxClonesPerSource` reading from and `maxClonesPerTarget` writing
// to one server. Priority is strict between levels: when a chunk cannot start only because
// the servers it needs are busy, chunks with more live replicas wait too (a chunk with one copy
// left is one disk away from loss; it gets the repair capacity first). A chunk with no alive
// replica, or with no server left to copy to, cannot be repaired now and does not block others.
// A dead server's replicas count as missing; a suspect server's still count (no copies yet).
//
// A clone: `Clone{handle, version, source, bytesPerSec}` to the target, whose deadline covers
// the transfer at the bandwidth bound plus queueing; on success the target becomes a replica
// (unless the chunk moved on meanwhile: then the copy is deleted); on failure the chunk is
// retried later with exponential backoff, avoiding the target that failed.
//
// Consistency with concurrent writes: a chunk is copied under a version nobody can write at.
// A chunk without a live lease (none, or expired for LEASE_GRACE_MS) is copied at its version:
// no client holds a lease to write it. A chunk with a lease is first frozen: under the lease
// lock the lease is revoked and the version bumped on every alive replica (as a lease grant
// does), so a client still holding the old lease gets ESTALE everywhere and asks the master
// again; the copy runs at the new version, and if a new lease is granted meanwhile (another
// bump) the copy fails or is discarded. A lease that is valid and was granted within
// `busyLeaseMs` means a writer is active: that chunk waits instead of being disturbed.
//
// Over-replication (more alive replicas than the goal, e.g. a dead server came back after its
// chunks were re-replicated): the extra replicas on the servers with the least free space are
// dropped and deleted through heartbeat replies, never while a clone or a lease is active.
//
// Rebalancing: when no repair is waiting, a few moves at a time (`rebalanceMoves`) copy a chunk
// from the fullest alive server to the emptiest and then drop it from the fullest, until every
// server's bytes are within `rebalanceBound` x average of the average. Chunks without a lease
// are moved first; one whose lease has been idle for `busyLeaseMs` is frozen first, as above.
// Bytes per server are the master's own accounting (reported chunk lengths), so moves in
// flight are projected exactly.
import { GfsError } from '../common/errors.js';
import { MiB } from '../common/limits.js';
import type { ChunkMeta } from './chunk-table.js';
import type { MasterCore } from './core.js';
import { LEASE_MS } from './lease-table.js';
import type { ChunkServerInfo, Clock, ServerEvent } from './server-registry.js';

export interface RepairOptions {
  /** Clones in flight cluster-wide (repair and rebalancing together). */
  maxClones: number;
  /** Clones reading from one server at once. */
  maxClonesPerSource: number;
  /** Clones writing to one server at once. */
  maxClonesPerTarget: number;
  /** Bandwidth bound of one clone, told to the target (bytes/s). */
  cloneBytesPerSec: number;
  /** Scheduler period. */
  tickMs: number;
  /** First retry delay after a failed clone; doubles per failure up to retryMaxMs. */
  retryBaseMs: number;
  retryMaxMs: number;
  /** A valid lease granted within this long marks an active writer: its chunk waits. */
  busyLeaseMs: number;
  /** Rebalancing moves in flight; 0 disables rebalancing. */
  rebalanceMoves: number;
  /** Rebalance until every alive server's bytes are within this fraction of the average. */
  rebalanceBound: number;
}

export const REPAIR_DEFAULTS: Readonly<RepairOptions> = {
  maxClones: 4,
  maxClonesPerSource: 2,
  maxClonesPerTarget: 2,
  cloneBytesPerSec: 64 * MiB,
  tickMs: 200,
  retryBaseMs: 1_000,
  retryMaxMs: 30_000,
  busyLeaseMs: 5_000,
  rebalanceMoves: 2,
  rebalanceBound: 0.1,
};

/** After its expiry a lease still counts this long (a write sent just before may arrive late). */
export const LEASE_GRACE_MS = 2_000;
/** Chunks evaluated per tick by the background scan (dirty chunks are evaluated at once). */
export const SCAN_SLICE = 20_000;
/** A full background scan starts at most this often unless something asks for one. */
export const FULL_SCAN_MS = 10_000;
/** Fixed part of a Clone deadline (connection, queueing at the target, fsync, verify). */
export const CLONE_DEADLINE_BASE_MS = 10_000;
/** Rebalancing decisions are taken at most this often. */
const REBALANCE_EVERY_MS = 200;
/** Chunks of the fullest server examined per rebalancing decision. */
const REBALANCE_CANDIDATES = 2_000;

/** What the master knows about one chunk's replicas, against its goal. */
export interface ChunkHealth {
  goal: number;
  /** Up-to-date replicas the master knows, in any server state. */
  replicas: string[];
  /** Replicas on alive or suspect servers. */
  live: number;
  /** Replicas on alive servers (copy sources; what over-replication counts). */
  alive: string[];
  /** No replica anywhere, entirely past the end of the file, never reported with data: not lost. */
  empty: boolean;
}

export function chunkHealth(core: MasterCore, meta: ChunkMeta): ChunkHealth {
  const inode = core.ns.get(meta.ino);
  const goal = inode?.goal ?? core.cfg.replication;
  const replicas = core.chunks.replicas(meta.handle);
  let live = 0;
  const alive: string[] = [];
  for (const id of replicas) {
    const st = core.registry.stateOf(id);
    if (st !== 'dead') live++;
    if (st === 'alive') alive.push(id);
  }
  // Never written: no replica known, past the end of the file, and nothing ever said it held
  // data (a reported length, a corrupt copy).
  const empty =
    replicas.length === 0 &&
    (!inode || inode.size <= meta.index * core.cfg.chunkSize) &&
    !((core.chunks.lengthOf(meta.handle) ?? 0) > 0) &&
    core.repair.corruptOn(meta.handle).length === 0;
  return { goal, replicas, live, alive, empty };
}

export interface RepairEntry {
  handle: number;
  /** Live replicas when last evaluated (the priority level). */
  live: number;
  goal: number;
  /** A client asked for this chunk and found it below its goal. */
  urgent: boolean;
  attempts: number;
  /** Scheduler clock: no new attempt before this. */
  notBefore: number;
  /** The target of the last failed attempt (avoided next time when there is a choice). */
  avoid?: string;
}

/**
 * Chunks below their goal, in repair order: urgent ones first (in the order they became
 * urgent), then by live replicas ascending, each level in arrival order.
 */
export class RepairQueue {
  private readonly entries = new Map<number, RepairEntry>();
  private readonly levels = new Map<number, Set<number>>();
  private readonly urgentOrder = new Set<number>();

  get size(): number {
    return this.entries.size;
  }

  get(handle: number): RepairEntry | undefined {
    return this.entries.get(handle);
  }

  has(handle: number): boolean {
    return this.entries.has(handle);
  }

  /** Adds the chunk or moves it to its new level; attempts and backoff are kept. */
  upsert(handle: number, live: number, goal: number): RepairEntry {
    let e = this.entries.get(handle);
    if (!e) {
      e = { handle, live, goal, urgent: false, attempts: 0, notBefore: 0 };
      this.entries.set(handle, e);
      this.level(live).add(handle);
    } else if (e.live !== live) {
      this.levels.get(e.live)?.delete(handle);
      e.live = live;
      this.level(live).add(handle);
    }
    e.goal = goal;
    return e;
  }

  markUrgent(handle: number): boolean {
    const e = this.entries.get(handle);
    if (!e || e.urgent) return false;
    e.urgent = true;
    this.urgentOrder.add(handle);
    return true;
  }

  remove(handle: number): void {
    const e = this.entries.get(handle);
    if (!e) return;
    this.entries.delete(handle);
    this.levels.get(e.live)?.delete(handle);
    this.urgentOrder.delete(handle);
  }

  *ordered(): Generator<RepairEntry> {
    for (const h of this.urgentOrder) {
      const e = this.entries.get(h);
      if (e) yield e;
    }
    const keys = [...this.levels.keys()].sort((a, b) => a - b);
    for (const k of keys) {
      for (const h of this.levels.get(k)!) {
        const e = this.entries.get(h);
        if (e && !e.urgent) yield e;
      }
    }
  }

  /** Entries per live count (for status). */
  countsByLevel(): Record<number, number> {
    const out: Record<number, number> = {};
    for (const e of this.entries.values()) out[e.live] = (out[e.live] ?? 0) + 1;
    return out;
  }

  private level(live: number): Set<number> {
    let s = this.levels.get(live);
    if (!s) this.levels.set(live, (s = new Set()));
    return s;
  }
}

type Plan =
  | { kind: 'go'; source: string; target: string; freeze: boolean }
  | { kind: 'busy' }
  | { kind: 'wait'; why: string }
  | { kind: 'impossible'; why: string };

interface CloneJob {
  handle: number;
  kind: 'repair' | 'move';
  source: string;
  target: string;
  /** Move: the server the chunk leaves once the copy is in place. */
  donor?: string;
  live: number;
  goal: number;
  urgent: boolean;
  startedAt: number;
  done: Promise<void>;
}

export interface RepairStats {
  clonesStarted: number;
  clonesSucceeded: number;
  clonesFailed: number;
  clonesDiscarded: number;
  bytesCloned: number;
  overReplicatedDeleted: number;
  rebalanceMoves: number;
  corruptReported: number;
  staleDeleted: number;
  urgentMarked: number;
}

export class ReplicationScheduler {
  readonly opts: RepairOptions;
  readonly queue = new RepairQueue();
  readonly stats: RepairStats = {
    clonesStarted: 0,
    clonesSucceeded: 0,
    clonesFailed: 0,
    clonesDiscarded: 0,
    bytesCloned: 0,
    overReplicatedDeleted: 0,
    rebalanceMoves: 0,
    corruptReported: 0,
    staleDeleted: 0,
    urgentMarked: 0,
  };
  private readonly jobs = new Map<number, CloneJob>();
  private readonly asSource = new Map<string, number>();
  private readonly asTarget = new Map<string, number>();
  private dirty = new Set<number>();
  /** Handles a client waited for before they were queued. */
  private readonly urgentSoon = new Set<number>();
  /** handle -> servers that reported a corrupt copy, until the chunk is back at its goal. */
  private readonly corrupt = new Map<number, Set<string>>();
  /** Rebalancing: handle -> scheduler-clock time before which it is not moved again. */
  private readonly moveBackoff = new Map<number, number>();
  private scanIter: Iterator<number> | undefined;
  private scanDue = true;
  private lastScanStart = -Infinity;
  private lastRebalance = -Infinity;
  /** Whether the last pass saw repair work that could run (gates rebalancing). */
  private repairPending = false;
  private timer: NodeJS.Timeout | undefined;
  private kicked = false;
  private ticking = false;

  constructor(
    private readonly core: MasterCore,
    opts: Partial<RepairOptions> = {},
    private readonly clock: Clock = () => performance.now(),
  ) {
    this.opts = { ...REPAIR_DEFAULTS, ...opts };
    const o = this.opts;
    for (const k of ['maxClones', 'maxClonesPerSource', 'maxClonesPerTarget', 'cloneBytesPerSec', 'tickMs'] as const) {
      if (!(Number.isFinite(o[k]) && o[k] >= 1)) throw new GfsError('EINVAL', `repair option ${k} must be >= 1, got ${o[k]}`);
    }
    if (!(o.rebalanceMoves >= 0)) throw new GfsError('EINVAL', `repair option rebalanceMoves must be >= 0, got ${o.rebalanceMoves}`);
    if (!(o.rebalanceBound > 0)) throw new GfsError('EINVAL', `repair option rebalanceBound must be > 0, got ${o.rebalanceBound}`);
    core.chunks.onReplicaRemoved = (handle) => {
      this.dirty.add(handle);
    };
    core.registry.onEvent((e) => this.onServerEvent(e));
  }

  // ------------------------------------------------------------------ inputs

  /** A client looked this chunk up and found fewer replicas than its goal: repair it first. */
  noteWaiting(handle: number): void {
    if (this.queue.markUrgent(handle)) {
      this.stats.urgentMarked++;
      this.kick();
    } else if (!this.queue.has(handle) && !this.urgentSoon.has(handle)) {
      this.urgentSoon.add(handle);
      this.dirty.add(handle);
      this.kick();
    }
  }

  /** A server reported its copy of `handle` corrupt (the replica is already dropped). */
  noteCorrupt(handle: number, server: string): void {
    if (!this.core.chunks.get(handle)) return;
    let s = this.corrupt.get(handle);
    if (!s) this.corrupt.set(handle, (s = new Set()));
    s.add(server);
    this.stats.corruptReported++;
    this.dirty.add(handle);
    this.kick();
  }

  /** A report showed a stale replica (deleted through the heartbeat reply). */
  noteStale(handle: number): void {
    this.stats.staleDeleted++;
    this.dirty.add(handle);
  }

  /** Re-evaluates these chunks at the next tick (goal changed, ...). */
  markDirty(handles: Iterable<number>): void {
    for (const h of handles) this.dirty.add(h);
    this.kick();
  }

  /** Servers that reported a corrupt copy of `handle` since it was last at its goal. */
  corruptOn(handle: number): string[] {
    return [...(this.corrupt.get(handle) ?? [])];
  }

  private onServerEvent(e: ServerEvent): void {
    if (e.kind === 'dead') {
      // Its replicas now count as missing: look at every chunk it held at once.
      for (const h of this.core.chunks.handlesOn(e.serverId)) this.dirty.add(h);
      this.kick();
    } else if (e.kind === 'alive' || e.kind === 'registered') {
      // Its report may bring replicas back (over-replication) or make repairs possible.
      this.scanDue = true;
      this.kick();
    }
  }

  // ------------------------------------------------------------------ running

  start(): void {
    this.stop();
    this.timer = setInterval(() => this.tick(), this.opts.tickMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Resolves when every clone in flight now has finished (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.jobs.size) await Promise.allSettled([...this.jobs.values()].map((j) => j.done));
  }

  get inFlight(): number {
    return this.jobs.size;
  }

  get rebalanceInFlight(): number {
    let n = 0;
    for (const j of this.jobs.values()) if (j.kind === 'move') n++;
    return n;
  }

  /** Chunks waiting for or undergoing repair that have a live replica to copy from. */
  backlog(): number {
    let n = 0;
    for (const e of this.queue.ordered()) if (e.live > 0) n++;
    return n;
  }

  /** Runs a tick soon (coalesced) when the scheduler is running. */
  private kick(): void {
    if (!this.timer || this.kicked) return;
    this.kicked = true;
    setImmediate(() => {
      this.kicked = false;
      this.tick();
    });
  }

  /** One scheduling pass: evaluate dirty chunks and a slice of all, start clones, rebalance. */
  tick(): void {
    if (this.ticking) return;
    this.ticking = true;
    try {
      // After a restart, replica locations are unknown until servers report: doing nothing
      // is right (every chunk would look lost).
      if (this.core.waitingForReports()) return;
      const now = this.clock();
      this.scan(now);
      this.startRepairs(now);
      this.rebalance(now);
    } catch (err) {
      this.core.log.error({ err }, 'replication scheduler tick failed');
    } finally {
      this.ticking = false;
    }
  }

  private scan(now: number): void {
    const dirty = this.dirty;
    this.dirty = new Set();
    for (const h of dirty) this.evaluate(h);
    if (!this.scanIter && (this.scanDue || now - this.lastScanStart >= FULL_SCAN_MS)) {
      this.scanIter = this.core.chunks.chunks.keys();
      this.scanDue = false;
      this.lastScanStart = now;
    }
    if (this.scanIter) {
      for (let i = 0; i < SCAN_SLICE; i++) {
        const n = this.scanIter.next();
        if (n.done) {
          this.scanIter = undefined;
          break;
        }
        this.evaluate(n.value);
      }
    }
    // Queue entries whose chunk was freed (no dirty mark for those).
    if (this.queue.size && !this.scanIter) {
      for (const e of [...this.queue.ordered()]) if (!this.core.chunks.get(e.handle)) this.queue.remove(e.handle);
    }
  }

  /** Puts the chunk in or out of the repair queue, and trims extra replicas. */
  private evaluate(handle: number): void {
    const meta = this.core.chunks.get(handle);
    if (!meta) {
      this.queue.remove(handle);
      this.corrupt.delete(handle);
      this.urgentSoon.delete(handle);
      this.moveBackoff.delete(handle);
      return;
    }
    const h = chunkHealth(this.core, meta);
    if (h.empty) {
      this.queue.remove(handle);
      this.urgentSoon.delete(handle);
      return;
    }
    if (h.live < h.goal) {
      this.queue.upsert(handle, h.live, h.goal);
      if (this.urgentSoon.delete(handle) && this.queue.markUrgent(handle)) this.stats.urgentMarked++;
    } else {
      this.queue.remove(handle);
      this.corrupt.delete(handle);
      this.urgentSoon.delete(handle);
    }
    if (h.alive.length > h.goal) this.trimExtra(meta, h);
  }

  private trimExtra(meta: ChunkMeta, h: ChunkHealth): void {
    const { chunks, registry, leases, log } = this.core;
    const handle = meta.handle;
    if (this.jobs.has(handle) || leases.isLocked(handle) || this.leaseLive(handle)) return;
    const free = (id: string) => {
      const s = registry.get(id);
      return s ? s.capacity - s.used : 0;
    };
    const victims = [...h.alive].sort((a, b) => free(a) - free(b) || (a < b ? -1 : 1)).slice(0, h.alive.length - h.goal);
    for (const v of victims) {
      chunks.removeReplica(handle, v);
      registry.queueDelete(v, handle);
      this.stats.overReplicatedDeleted++;
      log.info({ handle, server: v, alive: h.alive.length, goal: h.goal }, 'over-replicated: extra replica deleted');
    }
  }

  private startRepairs(now: number): void {
    let budget = this.opts.maxClones - this.jobs.size;
    let blockedLevel = Infinity;
    this.repairPending = false;
    for (const e of this.queue.ordered()) {
      if (this.jobs.has(e.handle)) {
        this.repairPending = true;
        continue;
      }
      if (!e.urgent && e.live > blockedLevel) break;
      if (e.notBefore > now) {
        this.repairPending = true;
        continue;
      }
      if (budget <= 0) {
        this.repairPending = true;
        break;
      }
      const p = this.plan(e);
      if (p.kind === 'impossible') continue;
      this.repairPending = true;
      if (p.kind === 'wait') continue;
      if (p.kind === 'busy') {
        if (!e.urgent) blockedLevel = Math.min(blockedLevel, e.live);
        continue;
      }
      this.launch({ handle: e.handle, kind: 'repair', source: p.source, target: p.target, live: e.live, goal: e.goal, urgent: e.urgent }, p.freeze);
      budget--;
    }
  }

  /** Where (and whether) the chunk of `e` can be copied now. */
  private plan(e: RepairEntry): Plan {
    const { chunks, registry, leases } = this.core;
    const meta = chunks.get(e.handle);
    if (!meta) return { kind: 'impossible', why: 'freed' };
    const h = chunkHealth(this.core, meta);
    if (h.live >= h.goal) return { kind: 'impossible', why: 'at goal' };
    if (!h.alive.length) return { kind: 'impossible', why: 'no alive replica to copy from' };
    if (leases.isLocked(e.handle)) return { kind: 'wait', why: 'lease grant in progress' };
    let freeze = false;
    if (this.leaseLive(e.handle)) {
      if (this.writerActive(meta)) return { kind: 'wait', why: 'a writer holds a fresh lease' };
      freeze = true;
    }
    const holders = new Set(h.replicas);
    let candidates = registry.alive().filter((s) => !holders.has(s.id) && !s.pendingDelete.has(e.handle));
    if (!candidates.length) return { kind: 'impossible', why: 'no server to copy to' };
    // Not back onto a server that just had a corrupt copy, nor the one that just failed, when
    // there is a choice.
    const shunned = new Set([...this.corruptOn(e.handle), ...(e.avoid ? [e.avoid] : [])]);
    const preferred = candidates.filter((s) => !shunned.has(s.id));
    if (preferred.length) candidates = preferred;
    const targets = candidates.filter((s) => this.count(this.asTarget, s.id) < this.opts.maxClonesPerTarget);
    const sources = h.alive.filter((id) => this.count(this.asSource, id) < this.opts.maxClonesPerSource);
    if (!targets.length || !sources.length) return { kind: 'busy' };
    const target = this.pickTarget(targets);
    const load = (id: string) => registry.get(id)?.load ?? 0;
    const source = [...sources].sort((a, b) => this.count(this.asSource, a) - this.count(this.asSource, b) || load(a) - load(b) || (a < b ? -1 : 1))[0]!;
    return { kind: 'go', source, target: target.id, freeze };
  }

  /** Most free space first (1% steps), then fewest clones arriving, then least load. */
  private pickTarget(targets: ChunkServerInfo[]): ChunkServerInfo {
    const used = (s: ChunkServerInfo) => (s.capacity > 0 ? Math.floor((s.used / s.capacity) * 100) : 100);
    return [...targets].sort(
      (a, b) =>
        used(a) - used(b) ||
        this.count(this.asTarget, a.id) - this.count(this.asTarget, b.id) ||
        a.load - b.load ||
        (a.id < b.id ? -1 : 1),
    )[0]!;
  }

  /** A lease exists that a client may still write under (unexpired, or just expired). */
  private leaseLive(handle: number): boolean {
    const l = this.core.leases.get(handle);
    return l !== undefined && l.expiry + LEASE_GRACE_MS > Date.now();
  }

  /** The lease is valid and was granted recently: a writer is likely active. */
  private writerActive(meta: ChunkMeta): boolean {
    const { leases, registry, chunks } = this.core;
    const l = leases.get(meta.handle);
    if (!l) return false;
    const valid =
      l.version === meta.version &&
      l.expiry > Date.now() &&
      l.replicas.every((s) => registry.isAlive(s) && chunks.hasReplica(meta.handle, s));
    return valid && Date.now() - (l.expiry - LEASE_MS) < this.opts.busyLeaseMs;
  }

  private count(m: Map<string, number>, id: string): number {
    return m.get(id) ?? 0;
  }

  private bump(m: Map<string, number>, id: string, by: number): void {
    const n = (m.get(id) ?? 0) + by;
    if (n <= 0) m.delete(id);
    else m.set(id, n);
  }

  private launch(j: Omit<CloneJob, 'startedAt' | 'done'>, freeze: boolean): void {
    const job: CloneJob = { ...j, startedAt: this.clock(), done: Promise.resolve() };
    this.jobs.set(job.handle, job);
    this.bump(this.asSource, job.source, 1);
    this.bump(this.asTarget, job.target, 1);
    this.stats.clonesStarted++;
    const meta = this.core.chunks.get(job.handle);
    this.core.log.info(
      {
        handle: job.handle,
        version: meta?.version,
        live: job.live,
        goal: job.goal,
        urgent: job.urgent,
        source: job.source,
        target: job.target,
        donor: job.donor,
        freeze,
      },
      job.kind === 'repair' ? 'repair clone started' : 'rebalance move started',
    );
    job.done = this.run(job, freeze).finally(() => {
      this.jobs.delete(job.handle);
      this.bump(this.asSource, job.source, -1);
      this.bump(this.asTarget, job.target, -1);
      this.dirty.add(job.handle);
      this.kick();
    });
  }

  private async run(job: CloneJob, freeze: boolean): Promise<void> {
    const { chunks, registry, calls, log, cfg } = this.core;
    const handle = job.handle;
    const t0 = this.clock();
    try {
      const version = freeze ? await this.freeze(job) : (chunks.get(handle)?.version ?? 0);
      if (!version) throw new GfsError('ENOENT', `chunk ${handle} was freed`);
      // A frozen version is logged before any copy is made at it.
      await this.core.durable();
      const src = registry.get(job.source);
      const tgt = registry.get(job.target);
      if (!src || !tgt) throw new GfsError('EHOSTDOWN', `server ${!src ? job.source : job.target} is gone`);
      const size = chunks.lengthOf(handle) ?? cfg.chunkSize;
      await calls.clone(
        tgt.addr,
        { handle, version, source: src.addr, bytesPerSec: this.opts.cloneBytesPerSec },
        this.cloneTimeoutMs(size),
      );
      const meta = chunks.get(handle);
      if (!meta || meta.version !== version) {
        // Freed, or a lease grant bumped the version while copying: the copy is stale.
        registry.queueDelete(job.target, handle);
        this.stats.clonesDiscarded++;
        log.info({ handle, version, current: meta?.version, target: job.target }, 'clone discarded: the chunk moved on while copying');
        return;
      }
      chunks.addReplica(handle, job.target);
      registry.cancelDelete(job.target, handle);
      this.stats.clonesSucceeded++;
      this.stats.bytesCloned += chunks.lengthOf(handle) ?? 0;
      const e = this.queue.get(handle);
      if (e) {
        e.attempts = 0;
        e.avoid = undefined;
      }
      log.info(
        { handle, version, kind: job.kind, source: job.source, target: job.target, ms: Math.round(this.clock() - t0), replicas: chunks.replicas(handle).length },
        job.kind === 'repair' ? 'repair clone finished' : 'rebalance clone finished',
      );
      if (job.kind === 'move') this.finishMove(job);
    } catch (err) {
      this.stats.clonesFailed++;
      const msg = (err as Error)?.message ?? String(err);
      if (job.kind === 'move') {
        this.moveBackoff.set(handle, this.clock() + this.opts.retryMaxMs);
      } else {
        const e = this.queue.get(handle);
        if (e) {
          e.attempts++;
          e.avoid = job.target;
          e.notBefore = this.clock() + Math.min(this.opts.retryMaxMs, this.opts.retryBaseMs * 2 ** Math.min(e.attempts - 1, 20));
        }
      }
      log.warn({ handle, kind: job.kind, source: job.source, target: job.target, err: msg }, 'clone failed; retrying later');
    }
  }

  /**
   * Revokes the chunk's lease and bumps its version on every alive replica (under the lease
   * lock, like a grant), so no write can land while the copy is made. Returns the new version.
   */
  private freeze(job: CloneJob): Promise<number> {
    const { chunks, registry, leases, calls, log } = this.core;
    const handle = job.handle;
    return leases.withLock(handle, async () => {
      const meta = chunks.get(handle);
      if (!meta) throw new GfsError('ENOENT', `chunk ${handle} was freed`);
      if (this.writerActive(meta)) throw new GfsError('EAGAIN', `chunk ${handle}: a writer took a fresh lease`);
      leases.revoke(handle);
      const oldVersion = meta.version;
      const newVersion = oldVersion + 1;
      const alive: string[] = [];
      for (const id of chunks.replicas(handle)) {
        if (registry.isAlive(id)) alive.push(id);
        else chunks.removeReplica(handle, id); // misses the bump: stale from now on
      }
      const results = await Promise.allSettled(alive.map((id) => calls.setVersion(registry.get(id)!.addr, handle, oldVersion, newVersion)));
      const ok: string[] = [];
      results.forEach((r, i) => {
        if (r.status === 'fulfilled') ok.push(alive[i]!);
        else {
          chunks.removeReplica(handle, alive[i]!);
          log.warn({ handle, server: alive[i], err: (r.reason as Error)?.message }, 'SetVersion before clone failed; replica dropped');
        }
      });
      if (!chunks.get(handle)) throw new GfsError('ENOENT', `chunk ${handle} was freed`);
      if (!ok.length) throw new GfsError('EHOSTDOWN', `no replica of chunk ${handle} took version ${newVersion}`);
      this.core.mutate({ op: 'setVersion', handle, version: newVersion });
      if (!ok.includes(job.source)) {
        this.bump(this.asSource, job.source, -1);
        job.source = ok[0]!;
        this.bump(this.asSource, job.source, 1);
      }
      log.info({ handle, version: newVersion, replicas: ok }, 'chunk frozen at a new version for cloning');
      return newVersion;
    });
  }

  /** Deadline of one Clone: the transfer at the bound, twice, for each clone the target may run first, plus a base. */
  cloneTimeoutMs(bytes: number): number {
    const transferMs = Math.ceil((Math.max(bytes, 1) / this.opts.cloneBytesPerSec) * 1000);
    return CLONE_DEADLINE_BASE_MS + transferMs * (2 + this.opts.maxClonesPerTarget);
  }

  // ------------------------------------------------------------------ rebalancing

  private rebalance(now: number): void {
    const o = this.opts;
    if (o.rebalanceMoves <= 0 || this.repairPending) return;
    if (now - this.lastRebalance < REBALANCE_EVERY_MS) return;
    for (const j of this.jobs.values()) if (j.kind === 'repair') return;
    if (this.rebalanceInFlight >= o.rebalanceMoves || this.jobs.size >= o.maxClones) return;
    this.lastRebalance = now;
    while (this.rebalanceInFlight < o.rebalanceMoves && this.jobs.size < o.maxClones) {
      const plan = this.planMove(now);
      if (!plan) return;
      this.launch(plan.job, plan.freeze);
    }
  }

  /** Bytes each alive server holds by the master's accounting, with moves in flight done. */
  serverBytes(): Map<string, number> {
    const { chunks, registry } = this.core;
    const bytes = new Map<string, number>();
    for (const s of registry.alive()) {
      let sum = 0;
      for (const h of chunks.handlesOn(s.id)) sum += chunks.lengthOf(h) ?? 0;
      bytes.set(s.id, sum);
    }
    for (const j of this.jobs.values()) {
      if (j.kind !== 'move') continue;
      const len = chunks.lengthOf(j.handle) ?? 0;
      if (bytes.has(j.target)) bytes.set(j.target, bytes.get(j.target)! + len);
      if (j.donor && bytes.has(j.donor)) bytes.set(j.donor, bytes.get(j.donor)! - len);
    }
    return bytes;
  }

  private planMove(now: number): { job: Omit<CloneJob, 'startedAt' | 'done'>; freeze: boolean } | undefined {
    const { chunks, registry, leases } = this.core;
    const bytes = this.serverBytes();
    if (bytes.size < 2) return undefined;
    let total = 0;
    for (const b of bytes.values()) total += b;
    const avg = total / bytes.size;
    if (avg <= 0) return undefined;
    const sorted = [...bytes.entries()].sort((a, b) => a[1] - b[1] || (a[0] < b[0] ? -1 : 1));
    const [recipient, low] = sorted[0]!;
    const [donor, high] = sorted[sorted.length - 1]!;
    const bound = this.opts.rebalanceBound * avg;
    if (high - avg <= bound && avg - low <= bound) return undefined;
    if (this.count(this.asTarget, recipient) >= this.opts.maxClonesPerTarget) return undefined;
    const recipientInfo = registry.get(recipient)!;
    // Chunks nobody holds a lease on first; else one whose lease has been idle (frozen first).
    let fallback: { job: Omit<CloneJob, 'startedAt' | 'done'>; freeze: boolean } | undefined;
    let examined = 0;
    for (const handle of chunks.handlesOn(donor)) {
      if (++examined > REBALANCE_CANDIDATES) break;
      if (this.jobs.has(handle) || chunks.hasReplica(handle, recipient) || recipientInfo.pendingDelete.has(handle)) continue;
      if ((this.moveBackoff.get(handle) ?? 0) > now) continue;
      const len = chunks.lengthOf(handle) ?? 0;
      // Only a move that narrows the gap (never overshoots it).
      if (len <= 0 || 2 * len > high - low) continue;
      if (leases.isLocked(handle) || this.queue.has(handle)) continue;
      const meta = chunks.get(handle);
      if (!meta) continue;
      const leased = this.leaseLive(handle);
      if (leased && (fallback || this.writerActive(meta))) continue;
      const h = chunkHealth(this.core, meta);
      if (h.alive.length < h.goal || !h.alive.includes(donor)) continue;
      const source = this.count(this.asSource, donor) < this.opts.maxClonesPerSource
        ? donor
        : h.alive.find((id) => this.count(this.asSource, id) < this.opts.maxClonesPerSource);
      if (!source) continue;
      const job = { handle, kind: 'move' as const, source, target: recipient, donor, live: h.live, goal: h.goal, urgent: false };
      if (!leased) return { job, freeze: false };
      fallback = { job, freeze: true };
    }
    return fallback;
  }

  /** The copy is in place: drop the donor's replica (if the chunk still has enough without it). */
  private finishMove(job: CloneJob): void {
    const { chunks, registry, leases, log } = this.core;
    const meta = chunks.get(job.handle);
    if (!meta || !job.donor) return;
    const h = chunkHealth(this.core, meta);
    if (h.alive.length <= h.goal || !h.alive.includes(job.donor)) return;
    if (leases.isLocked(job.handle) || this.leaseLive(job.handle)) return; // trimmed later as over-replicated
    chunks.removeReplica(job.handle, job.donor);
    registry.queueDelete(job.donor, job.handle);
    this.stats.rebalanceMoves++;
    log.info({ handle: job.handle, from: job.donor, to: job.target }, 'rebalance move finished');
  }
}
