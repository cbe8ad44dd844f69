// Chunkservers known to the master: addresses, capacity, load, the failure detector
// (alive -> suspect -> dead from time since the last heartbeat) and replica placement.
// Nothing here is persistent: chunkservers re-register after a master restart.
import { randomBytes } from 'node:crypto';
import type { Logger } from '../common/logger.js';

export type ServerState = 'alive' | 'suspect' | 'dead';

export interface ChunkServerInfo {
  id: string;
  addr: string;
  /** Its data channel address ("" = gRPC only). */
  dataAddr: string;
  capacity: number;
  used: number;
  /** Requests in flight, from the last heartbeat. */
  load: number;
  /** Monotonic ms of the last Register/Heartbeat. */
  lastSeen: number;
  /** Wall-clock ms of the same. */
  lastSeenWall: number;
  /** The state last logged (transitions are logged once). */
  loggedState: ServerState;
  /** Handles this server may drop, each with the monotonic ms before which it is not handed out. */
  pendingDelete: Map<number, number>;
}

export interface RegistryOptions {
  heartbeatMs: number;
  suspectAfterMs: number;
  deadAfterMs: number;
}

export type Clock = () => number;
const monotonic: Clock = () => performance.now();

/** Failure-detector events kept in memory for `gfs status` (newest last). */
export const MAX_SERVER_EVENTS = 200;
/**
 * Chunks one server is told to drop per second at most (spread over its heartbeats): under a
 * tenth of a core at ~70 us a chunk, so a big delete drains in the background within seconds.
 */
export const GC_DELETES_PER_SEC = 1000;
/**
 * The chunks of a deleted file are handed out for dropping no sooner than this: an `rm -rf`
 * is over before its clean-up starts, instead of sharing the two cores with it (GFS reclaims
 * lazily, days later; a few seconds keep the recycled files coming for the next creates).
 */
export const GC_DELAY_MS = 5_000;

export type ServerEventKind = 'registered' | 'address' | ServerState;

/** A registration, address change or state transition of a chunkserver. */
export interface ServerEvent {
  /** Wall-clock ms. */
  timeMs: number;
  kind: ServerEventKind;
  serverId: string;
  addr: string;
  from: string;
  to: string;
}

export type ServerEventListener = (e: ServerEvent) => void;

export class ServerRegistry {
  private readonly servers = new Map<string, ChunkServerInfo>();
  private timer: NodeJS.Timeout | undefined;
  /** Bounded, newest last. */
  private readonly eventLog: ServerEvent[] = [];
  private readonly listeners: ServerEventListener[] = [];
  /** Events by kind since start (metrics). */
  readonly eventCounts: Record<ServerEventKind, number> = { registered: 0, address: 0, alive: 0, suspect: 0, dead: 0 };

  constructor(
    private readonly opts: RegistryOptions,
    private readonly log: Logger,
    private readonly clock: Clock = monotonic,
  ) {}

  static newId(): string {
    return `cs-${randomBytes(6).toString('hex')}`;
  }

  get(id: string): ChunkServerInfo | undefined {
    return this.servers.get(id);
  }

  all(): ChunkServerInfo[] {
    return [...this.servers.values()];
  }

  /** Adds or refreshes a server (Register). A known id with a new address takes the new one. */
  upsert(id: string, addr: string, capacity: number, used: number, dataAddr = ''): ChunkServerInfo {
    let s = this.servers.get(id);
    if (!s) {
      s = {
        id,
        addr,
        dataAddr,
        capacity,
        used,
        load: 0,
        lastSeen: this.clock(),
        lastSeenWall: Date.now(),
        loggedState: 'alive',
        pendingDelete: new Map(),
      };
      this.servers.set(id, s);
      this.log.info({ server: id, addr }, 'chunkserver registered');
      this.emit({ kind: 'registered', serverId: id, addr, from: '', to: 'alive' });
    } else if (s.addr !== addr) {
      this.log.info({ server: id, addr, oldAddr: s.addr }, 'chunkserver address changed');
      this.emit({ kind: 'address', serverId: id, addr, from: s.addr, to: addr });
      s.addr = addr;
    }
    s.dataAddr = dataAddr;
    this.touch(s, { capacity, used });
    return s;
  }

  /** Records a sign of life with fresh numbers. */
  touch(s: ChunkServerInfo, stats: { capacity?: number; used?: number; load?: number }): void {
    if (stats.capacity !== undefined) s.capacity = stats.capacity;
    if (stats.used !== undefined) s.used = stats.used;
    if (stats.load !== undefined) s.load = stats.load;
    s.lastSeen = this.clock();
    s.lastSeenWall = Date.now();
    this.noteState(s);
  }

  stateOf(id: string): ServerState {
    const s = this.servers.get(id);
    return s ? this.computeState(s) : 'dead';
  }

  isAlive(id: string): boolean {
    return this.stateOf(id) === 'alive';
  }

  /** alive or suspect: still counted for reads and capacity. */
  isLive(id: string): boolean {
    return this.stateOf(id) !== 'dead';
  }

  alive(): ChunkServerInfo[] {
    return this.all().filter((s) => this.computeState(s) === 'alive');
  }

  /**
   * Picks up to n distinct alive servers for new replicas: least used fraction first (in 1%
   * steps, so near-equal disks compete on load), then least load, ties at random.
   */
  place(n: number, exclude: ReadonlySet<string> = new Set()): ChunkServerInfo[] {
    const candidates = shuffle(this.alive().filter((s) => !exclude.has(s.id)));
    const fraction = (s: ChunkServerInfo) => (s.capacity > 0 ? Math.floor((s.used / s.capacity) * 100) : 100);
    candidates.sort((a, b) => fraction(a) - fraction(b) || a.load - b.load);
    return candidates.slice(0, Math.max(0, n));
  }

  /** `delayMs`: not handed out before this long from now (the chunks of deleted files: gcDelayMs). */
  queueDelete(id: string, handle: number, delayMs = 0): void {
    const s = this.servers.get(id);
    if (s && !s.pendingDelete.has(handle)) s.pendingDelete.set(handle, this.clock() + delayMs);
  }

  cancelDelete(id: string, handle: number): void {
    this.servers.get(id)?.pendingDelete.delete(handle);
  }

  /**
   * Chunks the server may now drop, at most `max` (oldest first); the rest wait for a later
   * beat. Garbage is collected lazily, as GFS does: an `rm -rf` of many small files frees
   * thousands of chunks at once, and dropping them all at once took the CPU from the work the
   * user was waiting for.
   */
  takeDeletes(id: string, max = Math.ceil((GC_DELETES_PER_SEC * this.opts.heartbeatMs) / 1000)): number[] {
    const s = this.servers.get(id);
    if (!s) return [];
    const now = this.clock();
    const out: number[] = [];
    for (const [h, notBefore] of s.pendingDelete) {
      if (out.length >= max) break;
      if (notBefore <= now) out.push(h);
    }
    for (const h of out) s.pendingDelete.delete(h);
    return out;
  }

  /** Recent registrations and transitions, oldest first (at most MAX_SERVER_EVENTS). */
  events(): ServerEvent[] {
    return [...this.eventLog];
  }

  /** Called on every event (after it is logged); the re-replication scheduler listens. */
  onEvent(l: ServerEventListener): void {
    this.listeners.push(l);
  }

  /** Logs every state change since the last check. */
  checkStates(): void {
    for (const s of this.servers.values()) this.noteState(s);
  }

  start(): void {
    this.stop();
    this.timer = setInterval(() => this.checkStates(), Math.max(10, Math.floor(this.opts.heartbeatMs / 2)));
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private computeState(s: ChunkServerInfo): ServerState {
    const age = this.clock() - s.lastSeen;
    if (age >= this.opts.deadAfterMs) return 'dead';
    if (age >= this.opts.suspectAfterMs) return 'suspect';
    return 'alive';
  }

  private noteState(s: ChunkServerInfo): void {
    const state = this.computeState(s);
    if (state === s.loggedState) return;
    const entry = { server: s.id, addr: s.addr, from: s.loggedState, to: state, silentMs: Math.round(this.clock() - s.lastSeen) };
    if (state === 'alive') this.log.info(entry, 'chunkserver state');
    else this.log.warn(entry, 'chunkserver state');
    const from = s.loggedState;
    s.loggedState = state;
    this.emit({ kind: state, serverId: s.id, addr: s.addr, from, to: state });
  }

  private emit(e: Omit<ServerEvent, 'timeMs'>): void {
    const event: ServerEvent = { timeMs: Date.now(), ...e };
    this.eventCounts[e.kind]++;
    this.eventLog.push(event);
    if (this.eventLog.length > MAX_SERVER_EVENTS) this.eventLog.splice(0, this.eventLog.length - MAX_SERVER_EVENTS);
    for (const l of this.listeners) {
      try {
        l(event);
      } catch (err) {
        this.log.error({ err, event }, 'server event listener failed');
      }
    }
  }
}

function shuffle<T>(items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}
