// The master's in-memory world, shared by all request handlers: persistent state (changed only
// through `mutate`), and the non-persistent tables (servers, replicas, leases, opens).
import type { Logger } from '../common/logger.js';
import { type ChunkServerRpc, GrpcChunkServerCalls } from './chunkserver-calls.js';
import { LeaseTable } from './lease-table.js';
import { MasterState, type Mutation } from './mutations.js';
import { OpenTable } from './open-table.js';
import { type Clock, ServerRegistry } from './server-registry.js';
import { now } from './time.js';

export interface MasterConfig {
  chunkSize: number;
  replication: number;
  heartbeatMs: number;
  suspectAfterMs: number;
  deadAfterMs: number;
}

export type MutationListener = (m: Mutation) => void;

export class MasterCore {
  readonly state: MasterState;
  readonly registry: ServerRegistry;
  readonly leases = new LeaseTable();
  readonly opens = new OpenTable();
  readonly calls: ChunkServerRpc;
  private readonly listeners: MutationListener[] = [];

  constructor(
    readonly cfg: MasterConfig,
    readonly log: Logger,
    deps: { calls?: ChunkServerRpc; clock?: Clock; state?: MasterState } = {},
  ) {
    this.state = deps.state ?? new MasterState(now(), cfg.replication);
    this.registry = new ServerRegistry(cfg, log, deps.clock);
    this.calls = deps.calls ?? new GrpcChunkServerCalls();
    // A freed chunk is deleted lazily: each server that held it learns in its next heartbeat.
    this.state.chunks.onFreed = (handle, servers) => {
      this.leases.revoke(handle);
      for (const s of servers) this.registry.queueDelete(s, handle);
      log.debug({ handle, servers }, 'chunk freed');
    };
  }

  get ns() {
    return this.state.ns;
  }

  get chunks() {
    return this.state.chunks;
  }

  /** The one way persistent state changes. Synchronous: no interleaving inside a mutation. */
  mutate(m: Mutation): void {
    this.state.apply(m);
    for (const l of this.listeners) l(m);
  }

  /** Observers of applied records (the operation log of the durability issue, tests). */
  onMutation(l: MutationListener): void {
    this.listeners.push(l);
  }

  /**
   * Resolves when every mutation applied so far is durable. In-memory only for now; the
   * operation log will make this the group-commit fsync that replies wait for.
   */
  durable(): Promise<void> {
    return Promise.resolve();
  }

  close(): void {
    this.registry.stop();
    this.calls.close();
  }
}
