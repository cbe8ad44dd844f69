// The master's side of issue 7, in one place: which cluster secret it uses (and where it is),
// the credential it presents to chunkservers, chunk token signing, export rules, and the
// authentication wrapper around its gRPC handlers. startMaster (master.ts) only wires it in.
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import { secureService, serverCredentials, type TlsFiles } from '../common/auth.js';
import { TokenSigner } from '../common/chunk-token.js';
import { loadOrCreateSecret, SECRET_FILE, serverKeys, type ClusterKeys } from '../common/cluster-secret.js';
import type { Logger } from '../common/logger.js';
import { proto } from '../common/proto.js';
import type { MasterHandlers } from '../generated/gfs/Master.js';
import { sessionDispatcher, sessionHandler, type SessionDispatch } from '../common/session-server.js';
import type { UnaryMasterHandlers } from './service.js';
import { GrpcChunkServerCalls } from './chunkserver-calls.js';
import type { MasterCore } from './core.js';
import { type ExportRule, exportGuard, loadExports } from './exports.js';

export interface MasterSecurityOptions {
  /**
   * The cluster secret (src/common/cluster-secret.ts). Default: `secretFile`, else
   * `<dataDir>/cluster.secret` (generated on first start, mode 0600, with client.key beside
   * it), else a random secret for this run only (in-memory masters; see MasterHandle.keys).
   */
  secret?: Buffer;
  secretFile?: string;
  /** TLS for the gRPC port (certificate files); default plain TCP. */
  tls?: TlsFiles;
  /** Export rules (exports.ts) or the file holding them; default: everything rw from anywhere. */
  exports?: ExportRule[] | string;
  /** Issue chunk access tokens (default true; false only for benchmarks: `--no-tokens`). */
  tokens?: boolean;
}

/** Fields of MasterHandle about the master's identity. */
export interface MasterIdentity {
  /** The master's keys (server role): in-process tests use them to call the cluster. */
  keys: ClusterKeys;
  secret: Buffer;
  /** Where the secret and the client key are, when they are files. */
  secretFile?: string;
  clientKeyFile?: string;
}

export interface MasterSecurity {
  identity: MasterIdentity;
  /** Chunkserver calls presenting the master's credential (clones carry a read token). */
  calls: GrpcChunkServerCalls;
  credentials: grpc.ServerCredentials;
  /**
   * Sets up token signing on `core` and wraps its handlers (exports, then authentication).
   * `sessions` serves the same wrapped handlers to session carriers other than the gRPC
   * stream (the TCP listener, session-listener.ts).
   */
  handlers(core: MasterCore, handlers: UnaryMasterHandlers & Pick<MasterHandlers, 'SessionPort'>): { handlers: MasterHandlers; sessions: SessionDispatch };
}

export function masterSecurity(opts: MasterSecurityOptions & { dataDir?: string }, log: Logger): MasterSecurity {
  const rules = typeof opts.exports === 'string' ? loadExports(opts.exports) : opts.exports;
  let secret: Buffer;
  let secretFile: string | undefined;
  let clientKeyFile: string | undefined;
  if (opts.secret) secret = opts.secret;
  else if (opts.secretFile || opts.dataDir !== undefined) {
    secretFile = opts.secretFile ?? join(opts.dataDir!, SECRET_FILE);
    mkdirSync(opts.dataDir ?? dirname(secretFile), { recursive: true });
    const r = loadOrCreateSecret(secretFile, opts.dataDir ?? dirname(secretFile));
    secret = r.secret;
    clientKeyFile = r.clientKeyFile;
    if (r.created) log.info({ secretFile, clientKeyFile }, 'cluster secret generated');
  } else {
    secret = randomBytes(32);
  }
  const keys = serverKeys(secret);
  let signer: TokenSigner | undefined;
  const calls = new GrpcChunkServerCalls({ keys, role: 'server', tls: opts.tls }, () => signer);
  const credentials = serverCredentials(opts.tls);
  log.info(
    {
      secretFile,
      clientKeyFile,
      tokens: opts.tokens !== false,
      tls: !!opts.tls?.cert,
      exports: rules ? rules.map((r) => r.source) : 'default (* / rw)',
    },
    'master security',
  );
  return {
    identity: { keys, secret, secretFile, clientKeyFile },
    calls,
    credentials,
    handlers(core, handlers) {
      if (opts.tokens !== false) signer = core.tokens = new TokenSigner(keys.tokenKey!);
      const { SessionPort, ...unary } = handlers;
      const guarded = rules ? exportGuard(core, unary, rules, log) : unary;
      // Session calls go through the same guarded handlers as unary calls: every call of a
      // session is authenticated, bounded and checked against the exports like any other.
      const def = proto().gfs.Master.service;
      const table: Record<string, unknown> = {};
      const all: MasterHandlers = { ...guarded, SessionPort, Session: sessionHandler(def, table, log) };
      const secured = secureService(def, all, { keys, serverOnly: new Set(['Register', 'Heartbeat']), service: 'master', log });
      Object.assign(table, secured);
      return { handlers: secured, sessions: sessionDispatcher(def, table, log) };
    },
  };
}
