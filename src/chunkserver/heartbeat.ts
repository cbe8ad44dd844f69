// Register + heartbeat loop to the master. Registers with a full chunk report at start, after
// the master asks (`reregister`) and after any outage; then heartbeats every interval with
// capacity, used bytes, load, corrupt handles since the last beat and, every
// FULL_REPORT_EVERY beats, a full chunk report. Handles named in `delete` are dropped. Every
// call has a deadline; an outage is logged once, and retried with backoff and jitter.
import { readFile, rename, writeFile } from 'node:fs/promises';
import { GfsError } from '../common/errors.js';
import type { ClientSecurity } from '../common/auth.js';
import type { Logger } from '../common/logger.js';
import { proto } from '../common/proto.js';
import { callUnary, ClientPool } from '../common/rpc.js';
import type { MasterClient } from '../generated/gfs/Master.js';
import type {
  HeartbeatReply__Output,
  HeartbeatRequest,
  RegisterReply__Output,
  RegisterRequest,
} from '../generated/gfs/index.js';
import type { Admission } from './admission.js';
import type { ChunkStore } from './chunk-store.js';

export const HEARTBEAT_MS = 1_000;
/** Every this many heartbeats carries a full chunk report. */
export const FULL_REPORT_EVERY = 10;
/** Deadline of each Register / Heartbeat call. */
export const MASTER_CALL_TIMEOUT_MS = 5_000;
/** Longest wait between attempts while the master is unreachable. */
export const MASTER_BACKOFF_MAX_MS = 10_000;

export interface HeartbeatOptions {
  master: string;
  store: ChunkStore;
  admission: Admission;
  /** Address given to the master. */
  addr: string;
  /** Data channel address given to the master ("" = none). */
  dataAddr?: string;
  serverIdFile: string;
  capacity: () => Promise<number>;
  /** Fixed interval; when absent the master's suggestion (or HEARTBEAT_MS) is used. */
  heartbeatMs?: number;
  /** Called with handles dropped on the master's word (to forget per-chunk state). */
  onDeleted?: (handles: number[]) => void;
  log: Logger;
  /** The server credential presented to the master (auth.ts). */
  security?: ClientSecurity;
}

export async function loadServerId(file: string): Promise<string> {
  try {
    return (await readFile(file, 'utf8')).trim();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return '';
    throw err;
  }
}

async function saveServerId(file: string, id: string): Promise<void> {
  const tmp = `${file}.tmp`;
  await writeFile(tmp, `${id}\n`);
  await rename(tmp, file);
}

export class HeartbeatLoop {
  serverId = '';
  private readonly pool: ClientPool<MasterClient>;
  private readonly client: MasterClient;
  private interval: number;
  private registered = false;
  private beats = 0;
  private failures = 0;
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private deleting: Promise<void> = Promise.resolve();

  constructor(private readonly opts: HeartbeatOptions) {
    this.pool = new ClientPool<MasterClient>(proto().gfs.Master, opts.security);
    this.client = this.pool.get(opts.master);
    this.interval = opts.heartbeatMs ?? HEARTBEAT_MS;
  }

  /** Loads the persisted id, makes the first attempt (never throws), and starts the loop. */
  async start(): Promise<void> {
    this.serverId = await loadServerId(this.opts.serverIdFile);
    await this.tick();
  }

  get isRegistered(): boolean {
    return this.registered;
  }

  private async tick(): Promise<void> {
    if (this.stopped) return;
    this.running = this.beat();
    await this.running;
    this.running = undefined;
    if (this.stopped) return;
    let delay = this.interval;
    if (this.failures > 0) {
      const cap = Math.min(MASTER_BACKOFF_MAX_MS, this.interval * 2 ** Math.min(this.failures - 1, 16));
      delay = cap / 2 + (Math.random() * cap) / 2;
    }
    this.timer = setTimeout(() => void this.tick(), delay);
    this.timer.unref();
  }

  private async beat(): Promise<void> {
    const { log, master } = this.opts;
    try {
      if (!this.registered) await this.register();
      else await this.heartbeat();
      if (this.failures > 0) log.info({ master, server: this.serverId, failures: this.failures }, 'master reachable again');
      this.failures = 0;
    } catch (err) {
      if (this.failures === 0) log.warn({ master, server: this.serverId, err: (err as Error).message }, 'master call failed; retrying with backoff');
      this.failures++;
      this.registered = false;
    }
  }

  private async register(): Promise<void> {
    const { store, log } = this.opts;
    const reply = await callUnary<RegisterRequest, RegisterReply__Output>(
      this.client,
      this.client.Register,
      {
        serverId: this.serverId,
        addr: this.opts.addr,
        dataAddr: this.opts.dataAddr ?? '',
        capacity: await this.opts.capacity(),
        used: store.used,
        chunks: store.report(),
      },
      MASTER_CALL_TIMEOUT_MS,
      `Register with master ${this.opts.master}`,
    );
    if (!reply.serverId) throw new GfsError('EIO', `master ${this.opts.master} assigned no server id`);
    if (reply.serverId !== this.serverId) {
      await saveServerId(this.opts.serverIdFile, reply.serverId);
      if (this.serverId) log.warn({ old: this.serverId, server: reply.serverId }, 'master gave this server a new id');
      this.serverId = reply.serverId;
    }
    if (this.opts.heartbeatMs === undefined && reply.heartbeatMs > 0) this.interval = reply.heartbeatMs;
    this.registered = true;
    this.beats = 0;
    log.info({ server: this.serverId, addr: this.opts.addr, chunks: store.chunkCount }, 'registered with master');
    this.drop(reply.delete);
  }

  private async heartbeat(): Promise<void> {
    const { store, log } = this.opts;
    this.beats++;
    const full = this.beats % FULL_REPORT_EVERY === 0;
    const capacity = await this.opts.capacity();
    const corrupt = store.takeCorrupt();
    let reply: HeartbeatReply__Output;
    try {
      reply = await callUnary<HeartbeatRequest, HeartbeatReply__Output>(
        this.client,
        this.client.Heartbeat,
        {
          serverId: this.serverId,
          addr: this.opts.addr,
          dataAddr: this.opts.dataAddr ?? '',
          capacity,
          used: store.used,
          load: this.opts.admission.inFlight,
          chunkCount: store.chunkCount,
          chunks: full ? store.report() : [],
          fullReport: full,
          corrupt,
        },
        MASTER_CALL_TIMEOUT_MS,
        `Heartbeat to master ${this.opts.master}`,
      );
    } catch (err) {
      store.requeueCorrupt(corrupt);
      throw err;
    }
    if (corrupt.length > 0) log.warn({ server: this.serverId, corrupt }, 'reported corrupt chunks');
    if (reply.reregister) {
      log.info({ server: this.serverId }, 'master asked this server to register again');
      this.registered = false;
      await this.register();
    }
    this.drop(reply.delete);
  }

  /**
   * Deletes run one batch after another, beside the beat rather than inside it: after an
   * rm -rf the master names thousands of chunks at once, two file unlinks each, and a beat
   * that waited for them fell silent for seconds (the master then took every server for
   * suspect and refused to place new chunks).
   */
  private drop(handles: number[] | undefined): void {
    if (!handles || handles.length === 0) return;
    this.deleting = this.deleting
      .then(async () => {
        const removed = await this.opts.store.delete(handles);
        this.opts.onDeleted?.(handles);
        this.opts.log.info({ server: this.serverId, removed, asked: handles.length }, 'dropped chunks on master request');
      })
      .catch((err: unknown) => this.opts.log.warn({ server: this.serverId, err: (err as Error)?.message ?? String(err) }, 'dropping chunks failed'));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running?.catch(() => undefined);
    await this.deleting;
    this.pool.close();
  }
}
