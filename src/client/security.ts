// The credential a client presents (src/common/auth.ts): from `secret`, `secretFile` or
// $GFS_SECRET_FILE. A client always sends the client proof, also when it was given the cluster
// secret itself; it never signs chunk tokens (it gets them from the master with locations).
import type { ClientSecurity } from '../common/auth.js';
import { clientKeysOf, readCredential, SECRET_ENV } from '../common/cluster-secret.js';
import type { ResolvedClientOptions } from './options.js';

export function clientSecurity(o: Pick<ResolvedClientOptions, 'secret' | 'secretFile' | 'tls'>): ClientSecurity {
  const env = process.env;
  const tls = o.tls ?? (env.GFS_TLS_CA || env.GFS_TLS_CERT ? { ca: env.GFS_TLS_CA, cert: env.GFS_TLS_CERT, key: env.GFS_TLS_KEY } : undefined);
  if (o.secret) return { keys: clientKeysOf({ kind: 'secret', secret: o.secret }), tls };
  const file = o.secretFile ?? env[SECRET_ENV];
  return { keys: file ? clientKeysOf(readCredential(file)) : undefined, tls };
}
