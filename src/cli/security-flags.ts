// Command-line side of issue 7: --secret-file, --tls-cert/--tls-key/--tls-ca, --exports and
// the hidden --no-tokens, added to the commands that need them, and turned into options.
// Client commands (mount, status, fsck, setgoal) pass the credential to GfsClient through
// $GFS_SECRET_FILE / $GFS_TLS_* (set here from the flags, or found under ./.gfs/master).
import { type Command, Option } from 'commander';
import type { TlsFiles } from '../common/auth.js';
import { resolveSecretFile, SECRET_ENV } from '../common/cluster-secret.js';
import type { ChunkserverSecurityOptions } from '../chunkserver/security.js';
import type { MasterSecurityOptions } from '../master/security.js';
import { DEFAULT_DATA_DIR } from './master-addr.js';

export interface SecurityFlags {
  secretFile?: string;
  tlsCert?: string;
  tlsKey?: string;
  tlsCa?: string;
  exports?: string;
  /** false with --no-tokens. */
  tokens?: boolean;
}

const DAEMONS = new Set(['master', 'chunkserver']);
const CLIENTS = new Set(['mount', 'status', 'fsck', 'setgoal']);

/** Adds the flags to the commands of `program` (call after they are defined). */
export function addSecurityOptions(program: Command): void {
  for (const cmd of program.commands) {
    const name = cmd.name();
    if (!DAEMONS.has(name) && !CLIENTS.has(name)) continue;
    cmd.option(
      '--secret-file <file>',
      name === 'master'
        ? 'cluster secret (created if missing; default <data>/cluster.secret)'
        : name === 'chunkserver'
          ? 'cluster secret: the master\'s <data>/cluster.secret (default ./.gfs/master/cluster.secret)'
          : 'credential: the master\'s <data>/client.key or cluster.secret (default under ./.gfs/master)',
    );
    cmd.option('--tls-ca <file>', 'TLS: CA certificate(s) that signed the cluster\'s certificates (PEM)');
    cmd.option('--tls-cert <file>', DAEMONS.has(name) ? 'TLS: this server\'s certificate (PEM); enables TLS on its port' : 'TLS: client certificate (PEM, optional)');
    cmd.option('--tls-key <file>', 'TLS: private key of --tls-cert (PEM)');
    if (name === 'master') cmd.option('--exports <file>', 'export rules: ADDRESS[/MASK] PATH [ro|rw] [maproot=UID[:GID]] [mapall=UID[:GID]] (default: * / rw)');
    if (DAEMONS.has(name)) cmd.addOption(new Option('--no-tokens', 'do not issue/check chunk access tokens (benchmarks only)').hideHelp());
  }
  program.hook('preAction', (_p, action) => {
    if (CLIENTS.has(action.name())) applyClientSecurityEnv(action.opts() as SecurityFlags);
  });
}

function tlsOf(f: SecurityFlags): TlsFiles | undefined {
  return f.tlsCert || f.tlsKey || f.tlsCa ? { cert: f.tlsCert, key: f.tlsKey, ca: f.tlsCa } : undefined;
}

/** Client commands: the credential and TLS files travel to GfsClient through the environment. */
export function applyClientSecurityEnv(f: SecurityFlags): void {
  const file = resolveSecretFile(f.secretFile, 'client', DEFAULT_DATA_DIR);
  if (file) process.env[SECRET_ENV] = file;
  if (f.tlsCa) process.env.GFS_TLS_CA = f.tlsCa;
  if (f.tlsCert) process.env.GFS_TLS_CERT = f.tlsCert;
  if (f.tlsKey) process.env.GFS_TLS_KEY = f.tlsKey;
}

export function masterSecurityFlags(f: SecurityFlags): MasterSecurityOptions {
  return { secretFile: f.secretFile, tls: tlsOf(f), exports: f.exports, tokens: f.tokens !== false };
}

export function chunkserverSecurityFlags(f: SecurityFlags): ChunkserverSecurityOptions {
  return { secretFile: resolveSecretFile(f.secretFile, 'server', DEFAULT_DATA_DIR), tls: tlsOf(f), tokens: f.tokens !== false };
}
