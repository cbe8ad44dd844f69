// The chunkserver's side of issue 7: the cluster secret it must hold (to register, to verify
// callers and chunk tokens), the credential it presents to the master and to peers, TLS, and
// the authentication wrapper around its handlers. Which calls need which token is decided in
// service.ts / pipeline.ts / cloner.ts through `tokens`.
import type * as grpc from '@grpc/grpc-js';
import { secureService, serverCredentials, type ClientSecurity, type TlsFiles } from '../common/auth.js';
import { TokenVerifier } from '../common/chunk-token.js';
import { readCredential, resolveSecretFile, serverKeys, type ClusterKeys } from '../common/cluster-secret.js';
import { GfsError } from '../common/errors.js';
import type { Logger } from '../common/logger.js';
import { proto } from '../common/proto.js';

export interface ChunkserverSecurityOptions {
  /** The cluster secret; default `secretFile`, else $GFS_SECRET_FILE. Required one way or another. */
  secret?: Buffer;
  secretFile?: string;
  /** TLS for the gRPC port and for calls to the master and peers. */
  tls?: TlsFiles;
  /** Check chunk access tokens (default true; false only for benchmarks: `--no-tokens`). */
  tokens?: boolean;
}

/** Methods only the master or another chunkserver may call. */
export const SERVER_ONLY = new Set(['ApplyWrite', 'Delete', 'SetVersion', 'Truncate', 'Clone']);

export interface ChunkserverSecurity {
  keys: ClusterKeys;
  /** What this server presents to the master and to its peers. */
  client: ClientSecurity;
  /** undefined = tokens are not checked. */
  tokens: TokenVerifier | undefined;
  credentials: grpc.ServerCredentials;
  wrap<T extends object>(handlers: T, log: Logger): T;
}

export function chunkserverSecurity(opts: ChunkserverSecurityOptions): ChunkserverSecurity {
  let secret = opts.secret;
  if (!secret) {
    const file = resolveSecretFile(opts.secretFile, 'server', '/nonexistent');
    if (!file) {
      throw new GfsError('EACCES', 'a chunkserver needs the cluster secret: --secret-file FILE or $GFS_SECRET_FILE (the master writes <master data>/cluster.secret)');
    }
    const c = readCredential(file);
    if (c.kind !== 'secret') throw new GfsError('EACCES', `${file} is a client key; a chunkserver needs the cluster secret (cluster.secret)`);
    secret = c.secret;
  }
  const keys = serverKeys(secret);
  return {
    keys,
    client: { keys, role: 'server', tls: opts.tls },
    tokens: opts.tokens === false ? undefined : new TokenVerifier(keys.tokenKey!),
    credentials: serverCredentials(opts.tls),
    wrap: (handlers, log) => secureService(proto().gfs.ChunkServer.service, handlers, { keys, serverOnly: SERVER_ONLY, service: 'chunkserver', log }),
  };
}
