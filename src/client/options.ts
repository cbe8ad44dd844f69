// Client tunables, validated once at the boundary so a typo fails loudly at start-up.
import { GfsError } from '../common/errors.js';
import { parseAddr } from '../common/rpc.js';
import type { Logger } from '../common/logger.js';
import type { TlsFiles } from '../common/auth.js';

/** Deadline of one small control call to the master. */
export const MASTER_CALL_TIMEOUT_MS = 10_000;
/** How long a master operation keeps retrying while the master is unreachable. */
export const MASTER_RETRY_WINDOW_MS = 30_000;
/** Deadline of one data call to a chunkserver, plus time per MiB moved. */
export const DATA_CALL_BASE_TIMEOUT_MS = 10_000;
export const DATA_CALL_MS_PER_MIB = 1_000;
/** Attempts at one chunk piece before the operation fails (each may try every replica). */
export const PIECE_ATTEMPTS = 6;
/** Chunk pieces in flight per client (reads and writes share the pool). */
export const MAX_PARALLEL_PIECES = 64;
/**
 * Largest piece a written range is split into (within one chunk). Each written piece costs an
 * ordered commit at the primary, so writes want few, large pieces.
 */
export const PIECE_BYTES = 16 * 1024 * 1024;
/** Largest piece of a read: smaller than for writes, so one large read spreads over replicas. */
export const READ_PIECE_BYTES = 4 * 1024 * 1024;
/** Cached chunk locations. */
export const LOCATION_CACHE_ENTRIES = 100_000;
export const LOCATION_TTL_MS = 30_000;
/** A cached file size is trusted for reads this long. */
export const SIZE_TTL_MS = 1_000;
/** Locations fetched per master lookup beyond what a read needs (batching for sequential readers). */
export const LOOKUP_AHEAD_CHUNKS = 16;
/**
 * Files whose written-and-unsynced chunks are remembered for fsync. Past it the least recently
 * written file is forgotten, and an fsync of it syncs every chunk of the file instead.
 */
export const DIRTY_FILES_MAX = 16_384;

export interface ClientOptions {
  /** Master address, HOST:PORT. */
  master: string;
  log?: Logger;
  masterCallTimeoutMs?: number;
  masterRetryWindowMs?: number;
  dataCallTimeoutMs?: number;
  maxParallelPieces?: number;
  pieceBytes?: number;
  readPieceBytes?: number;
  locationTtlMs?: number;
  /** Files whose unsynced chunks are remembered (DIRTY_FILES_MAX). */
  dirtyFilesMax?: number;
  /**
   * Master calls over one session (default true; $GFS_MASTER_SESSION=0 turns it off): over
   * the master's session port (framed TCP) where it has one, else as messages of one gRPC
   * stream ('grpc', or $GFS_MASTER_SESSION=grpc, always takes the stream). Either costs a
   * fraction of a grpc-js unary call in CPU and latency.
   */
  masterSession?: boolean | 'grpc';
  /**
   * Chunk data over the chunkservers' framed-TCP data channel where they have one (default
   * true; $GFS_DATA_CHANNEL=0 turns it off): gRPC costs several times the CPU per byte.
   */
  dataChannel?: boolean;
  /**
   * Credential file (the master's client.key, or cluster.secret); default $GFS_SECRET_FILE.
   * Without one, the cluster refuses every call (UNAUTHENTICATED).
   */
  secretFile?: string;
  /** The cluster secret itself (instead of a file; in-process tests). */
  secret?: Buffer;
  /** TLS: CA of the cluster's certificates (and a client certificate, optional). */
  tls?: TlsFiles;
}

type SecurityOptions = 'secretFile' | 'secret' | 'tls';
type FlagOptions = 'masterSession' | 'dataChannel';
export type ResolvedClientOptions = Required<Omit<ClientOptions, 'log' | SecurityOptions | FlagOptions>> &
  Pick<ClientOptions, 'log' | SecurityOptions> & { masterSession: MasterSessionMode; dataChannel: boolean };

/** How master calls travel: a TCP session where the master has one, the gRPC stream, or unary calls. */
export type MasterSessionMode = 'tcp' | 'grpc' | 'off';

export function resolveClientOptions(opts: ClientOptions): ResolvedClientOptions {
  if (!opts || typeof opts.master !== 'string') throw new GfsError('EINVAL', 'client options: `master` (HOST:PORT) is required');
  parseAddr(opts.master);
  const r: Omit<ResolvedClientOptions, FlagOptions> = {
    master: opts.master,
    log: opts.log,
    masterCallTimeoutMs: opts.masterCallTimeoutMs ?? MASTER_CALL_TIMEOUT_MS,
    masterRetryWindowMs: opts.masterRetryWindowMs ?? MASTER_RETRY_WINDOW_MS,
    dataCallTimeoutMs: opts.dataCallTimeoutMs ?? DATA_CALL_BASE_TIMEOUT_MS,
    maxParallelPieces: opts.maxParallelPieces ?? MAX_PARALLEL_PIECES,
    pieceBytes: opts.pieceBytes ?? PIECE_BYTES,
    readPieceBytes: opts.readPieceBytes ?? READ_PIECE_BYTES,
    locationTtlMs: opts.locationTtlMs ?? LOCATION_TTL_MS,
    dirtyFilesMax: opts.dirtyFilesMax ?? DIRTY_FILES_MAX,
  };
  for (const [k, v] of Object.entries(r)) {
    if (k === 'master' || k === 'log') continue;
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) {
      throw new GfsError('EINVAL', `client options: ${k} must be a positive number, got ${String(v)}`);
    }
  }
  const env = process.env.GFS_MASTER_SESSION;
  const asked = opts.masterSession ?? (env === '0' ? false : env === 'grpc' ? 'grpc' : true);
  const masterSession: MasterSessionMode = asked === 'grpc' ? 'grpc' : asked ? 'tcp' : 'off';
  const dataChannel = opts.dataChannel ?? process.env.GFS_DATA_CHANNEL !== '0';
  return { ...r, masterSession, dataChannel, secretFile: opts.secretFile, secret: opts.secret, tls: opts.tls };
}
