// Who may call: every gRPC call of every gfs process carries metadata `gfs-auth: ROLE:PROOF`
// (an HMAC derived from the cluster secret, src/common/cluster-secret.ts; never the secret
// itself). Servers check it before any handler runs and refuse with UNAUTHENTICATED. The role
// says what the caller may do: `server` (master, chunkservers: registration, chunk admin,
// chunkserver-to-chunkserver calls) or `client` (mounts, CLI, library users). Over plain TCP
// the proof is a bearer credential; TLS (serverCredentials / channelCredentials, from
// certificate files) protects it in transit.
//
// The same wrapper bounds the calls one peer host may have in flight (PEER_INFLIGHT_MAX): a
// flood from one address is answered with RESOURCE_EXHAUSTED while others are served.
import { timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import type { ClusterKeys } from './cluster-secret.js';
import { GfsError } from './errors.js';
import type { Logger } from './logger.js';

export const AUTH_METADATA_KEY = 'gfs-auth';
/** Calls one peer host may have in flight on one server. */
export const PEER_INFLIGHT_MAX = 4096;
/** Elements a repeated field of any request may hold (a message is at most ~17 MiB anyway). */
export const REPEATED_MAX = 1 << 20;
/** Supplementary groups a cred may carry (Linux NGROUPS_MAX). */
export const GROUPS_MAX = 65_536;

export type Role = 'server' | 'client';

export interface TlsFiles {
  /** PEM certificate chain of this process (servers; optional for clients). */
  cert?: string;
  /** PEM private key for `cert`. */
  key?: string;
  /** PEM CA bundle that signed the peers' certificates. */
  ca?: string;
}

/** What a process presents when it calls another gfs process. */
export interface ClientSecurity {
  keys?: ClusterKeys;
  /** Sent proof: 'server' needs server keys (master, chunkservers). Default: the keys' role. */
  role?: Role;
  tls?: TlsFiles;
}

function readPem(file: string | undefined, what: string): Buffer | null {
  if (!file) return null;
  try {
    return readFileSync(file);
  } catch (err) {
    throw new GfsError('EINVAL', `cannot read TLS ${what} ${file}: ${(err as Error).message}`);
  }
}

export function checkTls(tls: TlsFiles | undefined, server: boolean): void {
  if (!tls) return;
  if (server && (!tls.cert || !tls.key)) throw new GfsError('EINVAL', 'TLS needs both --tls-cert and --tls-key');
  if (!!tls.cert !== !!tls.key) throw new GfsError('EINVAL', 'TLS needs --tls-cert and --tls-key together');
}

/** Credentials of a listening port: TLS from certificate files, else plain TCP. */
export function serverCredentials(tls: TlsFiles | undefined): grpc.ServerCredentials {
  if (!tls || (!tls.cert && !tls.key && !tls.ca)) return grpc.ServerCredentials.createInsecure();
  checkTls(tls, true);
  return grpc.ServerCredentials.createSsl(
    readPem(tls.ca, 'CA'),
    [{ cert_chain: readPem(tls.cert, 'certificate')!, private_key: readPem(tls.key, 'key')! }],
    false,
  );
}

/** Credentials of an outgoing channel: TLS (checking the server against `ca`), else plain TCP. */
export function channelCredentials(tls: TlsFiles | undefined): grpc.ChannelCredentials {
  if (!tls || (!tls.cert && !tls.key && !tls.ca)) return grpc.credentials.createInsecure();
  checkTls(tls, false);
  return grpc.credentials.createSsl(readPem(tls.ca, 'CA'), readPem(tls.key, 'key'), readPem(tls.cert, 'certificate'));
}

/** The `gfs-auth` value a caller sends, or undefined without keys. */
export function authValue(sec: ClientSecurity | undefined): string | undefined {
  const keys = sec?.keys;
  if (!keys) return undefined;
  const role = sec.role ?? keys.role;
  if (role === 'server') {
    if (!keys.serverProof) throw new GfsError('EINVAL', 'a server proof needs the cluster secret, not a client key');
    return `server:${keys.serverProof}`;
  }
  return `client:${keys.clientProof}`;
}

/** Adds `gfs-auth` to every call of a channel (unary and streaming alike). */
export function authInterceptor(value: string): grpc.Interceptor {
  return (options, nextCall) =>
    new grpc.InterceptingCall(nextCall(options), {
      start(metadata, listener, next) {
        metadata.set(AUTH_METADATA_KEY, value);
        next(metadata, listener);
      },
    });
}

/** Channel credentials + options (with the auth interceptor) for a client of another gfs process. */
export function clientChannel(sec: ClientSecurity | undefined, base: grpc.ChannelOptions): { creds: grpc.ChannelCredentials; options: grpc.ClientOptions } {
  const value = authValue(sec);
  return {
    creds: channelCredentials(sec?.tls),
    options: value ? { ...base, interceptors: [authInterceptor(value)] } : { ...base },
  };
}

function sameHex(a: string, b: string): boolean {
  const x = Buffer.from(a, 'hex');
  const y = Buffer.from(b, 'hex');
  return x.length === y.length && x.length > 0 && timingSafeEqual(x, y);
}

/** The role a call proves, or a ServiceError saying why it proves none. */
export function identify(metadata: grpc.Metadata, keys: ClusterKeys, what: string): Role | grpc.ServiceError {
  const r = proveRole(metadata.get(AUTH_METADATA_KEY)[0], keys, what);
  return r instanceof GfsError ? (r.toServiceError() as grpc.ServiceError) : r;
}

/** The role a credential value (`gfs-auth` metadata, a data channel Hello) proves, or why not. */
export function proveRole(v: unknown, keys: ClusterKeys, what: string): Role | GfsError {
  const refuse = (msg: string) => new GfsError('EACCES', msg, grpc.status.UNAUTHENTICATED);
  if (v === undefined || v === '') {
    return refuse(`${what}: call without the cluster credential (${AUTH_METADATA_KEY}); pass --secret-file or $GFS_SECRET_FILE (the master's <data>/client.key or cluster.secret)`);
  }
  const m = typeof v === 'string' ? /^(client|server):([0-9a-f]{64})$/.exec(v) : null;
  if (!m) return refuse(`${what}: malformed ${AUTH_METADATA_KEY} credential`);
  const role = m[1] as Role;
  const expected = role === 'server' ? keys.serverProof : keys.clientProof;
  if (!expected || !sameHex(m[2]!, expected)) return refuse(`${what}: wrong cluster secret (${role} proof does not match this cluster)`);
  return role;
}

/** Role proven by a call that passed secureService (undefined when the service is not guarded). */
export function roleOf(call: object): Role | undefined {
  return (call as { gfsRole?: Role }).gfsRole;
}

export interface GuardOptions {
  /** Server keys of this process; undefined = no authentication (in-process tests of old). */
  keys: ClusterKeys | undefined;
  /** Methods only a `server` caller may use. */
  serverOnly?: ReadonlySet<string>;
  /** Name used in messages: "master", "chunkserver". */
  service: string;
  log?: Logger;
  peerInflightMax?: number;
}

function peerHost(call: { getPeer(): string }): string {
  let p = '';
  try {
    p = call.getPeer();
  } catch {
    return '?';
  }
  const m = /^(?:ipv[46]:)?\[?([^\]]*?)\]?:\d+$/.exec(p);
  return m ? m[1]! : p;
}

/** Rejects requests whose repeated fields are absurdly long, before the handler sees them. */
function checkShape(req: unknown): string | undefined {
  if (!req || typeof req !== 'object') return undefined;
  for (const [k, v] of Object.entries(req as Record<string, unknown>)) {
    if (Array.isArray(v) && v.length > REPEATED_MAX) return `field ${k} has ${v.length} elements, at most ${REPEATED_MAX}`;
    if (k === 'cred' && v && typeof v === 'object') {
      const g = (v as { groups?: unknown[] }).groups;
      if (Array.isArray(g) && g.length > GROUPS_MAX) return `cred has ${g.length} groups, at most ${GROUPS_MAX}`;
    }
  }
  return undefined;
}

type AnyHandler = (call: any, cb?: any) => void; // eslint-disable-line @typescript-eslint/no-explicit-any

/**
 * Wraps every handler of a service: authentication (and the caller's role, see roleOf),
 * server-only methods, the per-peer in-flight bound, and shape checks of unary requests.
 */
export function secureService<T extends object>(def: grpc.ServiceDefinition, impl: T, o: GuardOptions): T {
  const inflight = new Map<string, number>();
  const max = o.peerInflightMax ?? PEER_INFLIGHT_MAX;
  const out: Record<string, AnyHandler> = {};
  for (const [name, handler] of Object.entries(impl as Record<string, AnyHandler>)) {
    const md = def[name];
    if (!md || typeof handler !== 'function') {
      out[name] = handler;
      continue;
    }
    const what = `${o.service} ${name}`;
    const admit = (call: grpc.ServerUnaryCall<unknown, unknown> | grpc.ServerReadableStream<unknown, unknown> | grpc.ServerWritableStream<unknown, unknown>): { err?: grpc.ServiceError; release: () => void } => {
      if (o.keys) {
        const role = identify(call.metadata, o.keys, what);
        if (typeof role !== 'string') return { err: role, release: () => undefined };
        if (role !== 'server' && o.serverOnly?.has(name)) {
          return { err: new GfsError('EACCES', `${what}: only the master and chunkservers may call this`, grpc.status.PERMISSION_DENIED).toServiceError() as grpc.ServiceError, release: () => undefined };
        }
        (call as { gfsRole?: Role }).gfsRole = role;
      }
      const host = peerHost(call);
      const n = inflight.get(host) ?? 0;
      if (n >= max) {
        return {
          err: new GfsError('EAGAIN', `${what}: ${n} calls in flight from ${host}, at most ${max}`, grpc.status.RESOURCE_EXHAUSTED).toServiceError() as grpc.ServiceError,
          release: () => undefined,
        };
      }
      inflight.set(host, n + 1);
      let released = false;
      return {
        release: () => {
          if (released) return;
          released = true;
          const left = (inflight.get(host) ?? 1) - 1;
          if (left <= 0) inflight.delete(host);
          else inflight.set(host, left);
        },
      };
    };
    if (!md.requestStream && !md.responseStream) {
      out[name] = (call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => {
        const { err, release } = admit(call);
        if (err) return cb(err);
        const bad = checkShape(call.request);
        if (bad) {
          release();
          return cb(new GfsError('EINVAL', `${what}: ${bad}`).toServiceError() as grpc.ServiceError);
        }
        call.once('cancelled', release);
        try {
          handler(call, (e: grpc.ServiceError | null, res?: unknown, trailer?: grpc.Metadata, flags?: number) => {
            release();
            cb(e, res, trailer, flags);
          });
        } catch (e) {
          release();
          o.log?.error({ rpc: name, err: e }, 'handler crashed');
          cb(new GfsError('EIO', `${what}: internal error`).toServiceError() as grpc.ServiceError);
        }
      };
    } else if (md.requestStream && !md.responseStream) {
      out[name] = (call: grpc.ServerReadableStream<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => {
        const { err, release } = admit(call);
        if (err) {
          call.on('data', () => undefined); // drain what the peer still sends
          call.on('error', () => undefined);
          return cb(err);
        }
        call.once('cancelled', release);
        handler(call, (e: grpc.ServiceError | null, res?: unknown, trailer?: grpc.Metadata, flags?: number) => {
          release();
          cb(e, res, trailer, flags);
        });
      };
    } else if (!md.requestStream && md.responseStream) {
      out[name] = (call: grpc.ServerWritableStream<unknown, unknown>) => {
        const { err, release } = admit(call);
        if (err) {
          call.emit('error', err);
          return;
        }
        for (const ev of ['finish', 'close', 'error', 'cancelled']) call.once(ev, release);
        const bad = checkShape(call.request);
        if (bad) {
          call.emit('error', new GfsError('EINVAL', `${what}: ${bad}`).toServiceError());
          return;
        }
        handler(call);
      };
    } else {
      out[name] = (call: grpc.ServerDuplexStream<unknown, unknown>) => {
        const { err, release } = admit(call as never);
        if (err) {
          call.emit('error', err);
          return;
        }
        for (const ev of ['finish', 'close', 'error', 'cancelled']) call.once(ev, release);
        handler(call);
      };
    }
  }
  return out as T;
}
