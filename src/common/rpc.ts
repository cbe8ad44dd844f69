// Glue between promises and grpc-js: promise-returning unary calls with deadlines, server
// handlers that turn thrown GfsErrors into statuses, and a per-address client cache.
import * as grpc from '@grpc/grpc-js';
import { GfsError, fromServiceError } from './errors.js';
import { CHANNEL_OPTIONS, SERVER_OPTIONS, enlargeServerWindows } from './grpc-options.js';
import type { Logger } from './logger.js';
import { clientChannel, type ClientSecurity } from './auth.js';
import { serverRpcStarted } from './metrics.js';

type UnaryMethod<Req, Res> = (
  req: Req,
  metadata: grpc.Metadata,
  options: grpc.CallOptions,
  cb: (err: grpc.ServiceError | null, res?: Res) => void,
) => grpc.ClientUnaryCall;

/**
 * Calls a unary method and resolves with its reply. The deadline is always set: there is no
 * way to wait forever. Failures come back as GfsError with the server's errno when it sent one.
 */
export function callUnary<Req, Res>(
  client: grpc.Client,
  method: UnaryMethod<Req, Res>,
  req: Req,
  timeoutMs: number,
  context: string,
  metadata: grpc.Metadata = new grpc.Metadata(),
): Promise<Res> {
  return new Promise<Res>((resolve, reject) => {
    method.call(client, req, metadata, { deadline: Date.now() + timeoutMs }, (err, res) => {
      if (err) reject(fromServiceError(err, context));
      else resolve(res as Res);
    });
  });
}

/** Wraps an async unary handler: GfsError -> status + errno metadata, anything else -> INTERNAL. */
export function unaryHandler<Req, Res>(
  log: Logger,
  name: string,
  fn: (req: Req, call: grpc.ServerUnaryCall<Req, Res>) => Promise<Res> | Res,
): grpc.handleUnaryCall<Req, Res> {
  return (call, callback) => {
    const done = serverRpcStarted(name);
    const t0 = performance.now();
    let result: Promise<Res>;
    try {
      result = Promise.resolve(fn(call.request, call));
    } catch (err) {
      result = Promise.reject(err);
    }
    result.then(
      (res) => {
        done(false);
        callback(null, res);
      },
      (err) => {
        done(true);
        callback(toServiceError(log, name, err, requestFields(call, t0)) as grpc.ServiceError);
      },
    );
  };
}

/** Request fields worth a failed call's log line: what it was about, who asked, how long it took. */
const REQUEST_FIELDS = ['path', 'ino', 'src', 'dst', 'handle', 'version', 'offset', 'length', 'serverId'] as const;
export function requestFields(call: { request?: unknown; getPeer?: () => string }, t0: number): Record<string, unknown> {
  const out: Record<string, unknown> = { durationMs: Math.round((performance.now() - t0) * 1000) / 1000 };
  const req = call.request as Record<string, unknown> | undefined;
  if (req && typeof req === 'object') {
    for (const k of REQUEST_FIELDS) {
      const v = req[k];
      if (v !== undefined && v !== '' && v !== 0 && (typeof v === 'string' || typeof v === 'number')) out[k] = v;
    }
  }
  try {
    const peer = call.getPeer?.();
    if (peer) out.peer = peer;
  } catch {
    // a call that is already gone has no peer
  }
  return out;
}

export function toServiceError(log: Logger, name: string, err: unknown, fields: Record<string, unknown> = {}): Partial<grpc.ServiceError> {
  if (err instanceof GfsError) {
    if (err.grpcCode === grpc.status.INTERNAL || err.code === 'EIO') log.warn({ rpc: name, ...fields, err: err.message }, 'rpc failed');
    else log.debug({ rpc: name, ...fields, err: err.message }, 'rpc refused');
    return err.toServiceError();
  }
  log.error({ rpc: name, ...fields, err }, 'rpc handler crashed');
  return new GfsError('EIO', `${name}: internal error: ${(err as Error)?.message ?? String(err)}`).toServiceError();
}

/** Binds a server with gfs's options on host:port (port 0 = ephemeral); resolves the port. */
export async function startServer(
  services: Array<[grpc.ServiceDefinition, grpc.UntypedServiceImplementation]>,
  host: string,
  port: number,
  credentials: grpc.ServerCredentials = grpc.ServerCredentials.createInsecure(),
): Promise<{ server: grpc.Server; port: number }> {
  enlargeServerWindows();
  const server = new grpc.Server(SERVER_OPTIONS);
  for (const [def, impl] of services) server.addService(def, impl);
  const bound = await new Promise<number>((resolve, reject) => {
    server.bindAsync(`${host}:${port}`, credentials, (err, p) =>
      err ? reject(new GfsError('EBUSY', `cannot listen on ${host}:${port}: ${err.message}`)) : resolve(p),
    );
  });
  return { server, port: bound };
}

/** Stops accepting calls, lets running ones finish for up to graceMs, then cuts them. */
export async function stopServer(server: grpc.Server, graceMs = 2_000): Promise<void> {
  await new Promise<void>((resolve) => {
    const timer = setTimeout(() => {
      server.forceShutdown();
      resolve();
    }, graceMs);
    server.tryShutdown(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}

type ClientCtor<C> = new (address: string, creds: grpc.ChannelCredentials, options?: grpc.ClientOptions) => C;

/** One channel per peer address, reused by every call to it. */
export class ClientPool<C extends grpc.Client> {
  private readonly clients = new Map<string, C>();
  private readonly channel: ReturnType<typeof clientChannel>;

  /** `security`: the cluster credential (and TLS) every call presents (src/common/auth.ts). */
  constructor(private readonly ctor: ClientCtor<C>, security?: ClientSecurity) {
    this.channel = clientChannel(security, CHANNEL_OPTIONS);
  }

  get(addr: string): C {
    let c = this.clients.get(addr);
    if (!c) {
      c = new this.ctor(addr, this.channel.creds, this.channel.options);
      this.clients.set(addr, c);
    }
    return c;
  }

  close(): void {
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }
}

/** Parses "host:port" (IPv6 in brackets), or throws EINVAL naming the bad value. */
export function parseAddr(addr: string): { host: string; port: number } {
  const m = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(addr.trim());
  const port = m ? Number(m[2]) : NaN;
  if (!m || port <= 0 || port > 65535) throw new GfsError('EINVAL', `bad address "${addr}": expected HOST:PORT`);
  return { host: m[1]!, port };
}
