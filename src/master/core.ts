// The master's in-memory world, shared by all request handlers: persistent state (changed only
// through `mutate`), and the non-persistent tables (servers, replicas, leases, opens).
import type { TokenSigner } from '../common/chunk-token.js';
import type { Logger } from '../common/logger.js';
import { type ChunkServerRpc, GrpcChunkServerCalls } from './chunkserver-calls.js';
import { LeaseTable } from './lease-table.js';
import { MasterState, type Mutation } from './mutations.js';
import { OpenTable } from './open-table.js';
import { AccessGrants } from './permissions.js';
import { type RepairOptions, ReplicationScheduler } from './replication-scheduler.js';
import { type Clock, ServerRegistry } from './server-registry.js';
import type { Journal } from './store.js';
import { now } from './time.js';

export interface MasterConfig {
  chunkSize: number;
  replication: number;
  heartbeatMs: number;
  suspectAfterMs: number;
  deadAfterMs: number;
  /** How long the chunks of deleted files wait before their servers drop them (GC_DELAY_MS). */
  gcDelayMs: number;
  /** Re-replication / rebalancing tunables (defaults: REPAIR_DEFAULTS). */
  repair?: Partial<RepairOptions>;
}

export type MutationListener = (m: Mutation) => void;

/**
 * Ids reserved per reserveIds record (background sync mode). A new reservation is logged when
 * fewer than half of the reserved ids are left, so replies seldom wait for it to be durable.
 */
export const ID_RESERVE_BLOCK = 65_536;

export class MasterCore {
  readonly state: MasterState;
  readonly registry: ServerRegistry;
  readonly leases = new LeaseTable();
  readonly opens = new OpenTable();
  /** What each client's opens allowed (permissions.ts), checked before issuing chunk tokens. */
  readonly grants = new AccessGrants();
  /** Signs chunk access tokens; undefined when the cluster runs without them (--no-tokens). */
  tokens: TokenSigner | undefined;
  readonly calls: ChunkServerRpc;
  /** Re-replication, over-replication and rebalancing (started by startMaster). */
  readonly repair: ReplicationScheduler;
  private readonly listeners: MutationListener[] = [];
  private journal: Journal | undefined;
  private reportsDueUntil = 0;
  /** Ids below these are covered by a durable reserveIds record. */
  private readonly safeIds = { ino: 0, handle: 0 };

  constructor(
    readonly cfg: MasterConfig,
    readonly log: Logger,
    deps: { calls?: ChunkServerRpc; clock?: Clock; state?: MasterState } = {},
  ) {
    this.state = deps.state ?? new MasterState(now(), cfg.replication);
    this.registry = new ServerRegistry(cfg, log, deps.clock);
    this.calls = deps.calls ?? new GrpcChunkServerCalls();
    this.repair = new ReplicationScheduler(this, cfg.repair, deps.clock);
    // A freed chunk is deleted lazily: each server that held it learns in its next heartbeat.
    this.state.chunks.onFreed = (handle, servers) => {
      this.leases.revoke(handle);
      for (const s of servers) this.registry.queueDelete(s, handle, cfg.gcDelayMs);
      log.debug({ handle, servers }, 'chunk freed');
    };
  }

  get ns() {
    return this.state.ns;
  }

  get chunks() {
    return this.state.chunks;
  }

  /**
   * The one way persistent state changes. Synchronous: no interleaving inside a mutation. With
   * a journal, the record is appended to the operation log; callers answer only after
   * `committed()`. Once the log has failed, every mutation is refused with EIO.
   */
  mutate(m: Mutation): void {
    const failed = this.journal?.failed;
    if (failed) throw failed;
    this.state.apply(m);
    this.journal?.append(m);
    for (const l of this.listeners) l(m);
    if (this.journal?.syncMode === 'background' && m.op !== 'reserveIds') this.reserveIdsAhead();
  }

  /** Sends every further mutation to `journal` (the operation log of the data directory). */
  attachJournal(journal: Journal): void {
    this.journal = journal;
    // What recovery loaded is on disk (recovery syncs the last segment).
    this.safeIds.ino = this.state.reserved.ino;
    this.safeIds.handle = this.state.reserved.handle;
  }

  /**
   * Background mode acknowledges records before they are durable, so a power cut can take back
   * ids already handed out; reserving them durably ahead means a restart never hands them out
   * again (MasterState.skipReserved).
   */
  private reserveIdsAhead(): void {
    const r = this.state.reserved;
    const ino = this.ns.nextIno;
    const handle = this.chunks.nextHandle;
    if (ino + ID_RESERVE_BLOCK / 2 <= r.ino && handle + ID_RESERVE_BLOCK / 2 <= r.handle) return;
    const rec: Mutation = { op: 'reserveIds', ino: Math.max(r.ino, ino + ID_RESERVE_BLOCK), handle: Math.max(r.handle, handle + ID_RESERVE_BLOCK) };
    this.mutate(rec);
    this.journal!.durable().then(
      () => {
        this.safeIds.ino = Math.max(this.safeIds.ino, rec.ino);
        this.safeIds.handle = Math.max(this.safeIds.handle, rec.handle);
      },
      () => undefined, // the log failed: every later mutation is refused anyway
    );
  }

  /**
   * Resolves when every mutation applied so far may be acknowledged: durable in group and each
   * mode; written to the log in background mode (durable too while an id handed out is not yet
   * covered by a durable reservation).
   */
  committed(): Promise<void> {
    const j = this.journal;
    if (!j) return Promise.resolve();
    if (j.syncMode === 'background' && (this.ns.nextIno > this.safeIds.ino || this.chunks.nextHandle > this.safeIds.handle)) return j.durable();
    return j.committed();
  }

  /**
   * After a restart, replica locations are unknown until chunkservers report. Until then a
   * chunk with no known replica is "not reported yet", not "lost": no fresh placement, no
   * version bump (either would turn the real replicas stale); callers get EHOSTDOWN and retry.
   */
  awaitReports(ms: number): void {
    this.reportsDueUntil = Date.now() + ms;
  }

  /** True while chunkservers may still be reporting after a restart. */
  waitingForReports(): boolean {
    return Date.now() < this.reportsDueUntil;
  }

  /** Observers of applied records (the operation log of the durability issue, tests). */
  onMutation(l: MutationListener): void {
    this.listeners.push(l);
  }

  /**
   * Resolves when every mutation applied so far is durable (the group-commit fsync covering
   * it is done); rejects with EIO when the log cannot be written. Without a journal (an
   * in-memory master) it resolves at once.
   */
  durable(): Promise<void> {
    return this.journal ? this.journal.durable() : Promise.resolve();
  }

  close(): void {
    this.repair.stop();
    this.registry.stop();
    this.calls.close();
  }
}
