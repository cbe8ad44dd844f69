// The master's calls to chunkservers: SetVersion (lease grants), Truncate (shrinking files),
// Delete (best-effort garbage collection) and Clone (re-replication, rebalancing). Every call
// has a deadline.
import type { ClientSecurity } from '../common/auth.js';
import { TOKEN_TTL_MS, type TokenSigner } from '../common/chunk-token.js';
import { callUnary, ClientPool } from '../common/rpc.js';
import { proto } from '../common/proto.js';
import type { ChunkServerClient } from '../generated/gfs/ChunkServer.js';
import type { Empty__Output } from '../generated/gfs/index.js';

export const SET_VERSION_TIMEOUT_MS = 5_000;
export const TRUNCATE_TIMEOUT_MS = 5_000;
export const DELETE_TIMEOUT_MS = 5_000;

/** What the master needs from chunkservers (an interface so tests can substitute it). */
export interface ChunkServerRpc {
  setVersion(addr: string, handle: number, oldVersion: number, newVersion: number): Promise<void>;
  truncate(addr: string, handle: number, version: number, length: number): Promise<void>;
  delete(addr: string, handles: number[]): Promise<void>;
  /** Asks the chunkserver at `addr` to copy chunk `handle` at `version` from `source`. */
  clone(addr: string, req: CloneArgs, timeoutMs: number): Promise<void>;
  close(): void;
}

export interface CloneArgs {
  handle: number;
  version: number;
  /** Address of the replica to copy from. */
  source: string;
  /** Bandwidth bound of this copy; 0 = the chunkserver's default. */
  bytesPerSec: number;
}

export class GrpcChunkServerCalls implements ChunkServerRpc {
  private readonly pool: ClientPool<ChunkServerClient>;

  /** `security`: the master's server credential; `tokens`: signs the source-read token of clones. */
  constructor(security?: ClientSecurity, private readonly tokens?: () => TokenSigner | undefined) {
    this.pool = new ClientPool<ChunkServerClient>(proto().gfs.ChunkServer, security);
  }

  async setVersion(addr: string, handle: number, oldVersion: number, newVersion: number): Promise<void> {
    const c = this.pool.get(addr);
    await callUnary<object, Empty__Output>(
      c,
      c.SetVersion,
      { handle, oldVersion, newVersion },
      SET_VERSION_TIMEOUT_MS,
      `SetVersion ${handle} on ${addr}`,
    );
  }

  async truncate(addr: string, handle: number, version: number, length: number): Promise<void> {
    const c = this.pool.get(addr);
    await callUnary<object, Empty__Output>(
      c,
      c.Truncate,
      { handle, version, length },
      TRUNCATE_TIMEOUT_MS,
      `Truncate ${handle} on ${addr}`,
    );
  }

  async delete(addr: string, handles: number[]): Promise<void> {
    const c = this.pool.get(addr);
    await callUnary<object, Empty__Output>(c, c.Delete, { handles }, DELETE_TIMEOUT_MS, `Delete on ${addr}`);
  }

  async clone(addr: string, req: CloneArgs, timeoutMs: number): Promise<void> {
    const c = this.pool.get(addr);
    // Valid for as long as the clone may take (it may wait in the target's queue first).
    const token = this.tokens?.()?.sign('read', req.handle, req.version, timeoutMs + TOKEN_TTL_MS);
    await callUnary<object, Empty__Output>(c, c.Clone, { ...req, token }, timeoutMs, `Clone ${req.handle} to ${addr} from ${req.source}`);
  }

  close(): void {
    this.pool.close();
  }
}
