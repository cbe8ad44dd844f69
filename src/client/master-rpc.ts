// Calls to the master with a deadline each, retried with backoff while the master is
// unreachable (a restart), bounded by a retry window so nothing waits forever. Calls travel
// over one session stream (common/session-client.ts) unless the session is turned off.
import { status as GrpcStatus } from '@grpc/grpc-js';
import { GfsError } from '../common/errors.js';
import { retry } from '../common/deadline.js';
import type { OpStats } from '../common/op-stats.js';
import { callUnary, parseAddr } from '../common/rpc.js';
import { proto } from '../common/proto.js';
import { CHANNEL_OPTIONS } from '../common/grpc-options.js';
import * as grpc from '@grpc/grpc-js';
import type { MasterClient } from '../generated/gfs/Master.js';
import type { ResolvedClientOptions } from './options.js';
import { authValue, clientChannel, type ClientSecurity, type TlsFiles } from '../common/auth.js';
import { openSessionSocket } from '../common/session-socket.js';
import type { SessionPortReply__Output } from '../generated/gfs/index.js';
import { CallSession, type SessionStream } from '../common/session-client.js';

const RETRY_BASE_MS = 50;
const RETRY_MAX_DELAY_MS = 1_000;

/** The methods whose requests carry a request id (proto/gfs.proto, service Master). */
function requestIdMethods(service: grpc.ServiceDefinition): Set<string> {
  const out = new Set<string>();
  for (const [method, def] of Object.entries(service)) {
    const fields = (def as { requestType?: { type?: { field?: Array<{ name?: string }> } } }).requestType?.type?.field ?? [];
    if (fields.some((f) => f.name === 'requestId')) out.add(method);
  }
  return out;
}

export class MasterRpc {
  private readonly client: MasterClient;
  private readonly session: CallSession | undefined;
  private readonly deduplicated: ReadonlySet<string>;
  /** The last call number given in a request id (request-cache.ts). */
  private requestSeq = 0;
  /** Numbers of calls with a request id still waiting for their answer, lowest first. */
  private readonly unanswered = new Set<number>();

  /** `clientId`: the client's name, also in its request ids. */
  constructor(
    private readonly clientId: string,
    private readonly opts: ResolvedClientOptions,
    private readonly stats?: OpStats,
    security?: ClientSecurity,
  ) {
    const Ctor = proto().gfs.Master;
    this.deduplicated = requestIdMethods(Ctor.service);
    const { creds, options } = clientChannel(security, CHANNEL_OPTIONS);
    this.client = new Ctor(opts.master, creds, options);
    if (opts.masterSession !== 'off') {
      this.sessionAuth = authValue(security);
      this.tls = security?.tls;
      this.session = new CallSession(() => this.openSession(), Ctor.service);
    }
  }

  /** The TCP session's address, once asked; undefined: the master has none (use the gRPC stream). */
  private sessionAddr: Promise<string | undefined> | undefined;
  private resolvedAddr: string | undefined;
  /** The master's answer is in (a port, or none): calls need not wait for `sessionAddr`. */
  private sessionKnown = false;
  private readonly sessionAuth: string | undefined;
  private readonly tls: TlsFiles | undefined;

  private openSession(): SessionStream {
    const addr = this.resolvedAddr;
    if (!addr) return this.client.Session();
    return openSessionSocket(addr, {
      auth: this.sessionAuth,
      tls: this.tls,
      // A master restarted since listens on another port: ask again before the next try.
      onConnectFailed: () => {
        this.sessionAddr = undefined;
        this.resolvedAddr = undefined;
        this.sessionKnown = false;
      },
    });
  }

  /**
   * Runs `call` once the master has said where its session port is: asked once, and again
   * after a connection to it failed. A master without one, or one that does not know the
   * question, is spoken to over the stream.
   */
  private sessionReady<T>(call: () => Promise<T>): Promise<T> {
    if (this.sessionKnown || this.opts.masterSession !== 'tcp') return call();
    this.sessionAddr ??= callUnary<object, SessionPortReply__Output>(this.client, this.client.SessionPort.bind(this.client) as never, {}, this.opts.masterCallTimeoutMs, 'master SessionPort').then(
      (r) => {
        this.resolvedAddr = r.port ? `${parseAddr(this.opts.master).host}:${r.port}` : undefined;
        this.sessionKnown = true;
        return this.resolvedAddr;
      },
      (err: unknown) => {
        if (err instanceof GfsError && err.grpcCode === GrpcStatus.UNIMPLEMENTED) {
          this.sessionKnown = true;
          return undefined;
        }
        this.sessionAddr = undefined; // not reached: asked again on the retry
        throw err;
      },
    );
    return this.sessionAddr.then(call);
  }

  /**
   * `idempotent` calls are also retried after a timeout, and so are changes the master runs
   * once per request id (request-cache.ts): every try of one goes with the same id. Any other
   * change is retried only when the master was not reached at all (UNAVAILABLE).
   */
  call<Req, Res>(method: keyof MasterClient & string, req: Req, idempotent: boolean): Promise<Res> {
    let retrySafe = idempotent;
    let seq = 0;
    if (!idempotent && this.deduplicated.has(method)) {
      // Numbers only grow, so the set's first is the lowest: every call below it is answered.
      seq = ++this.requestSeq;
      this.unanswered.add(seq);
      req = { ...req, requestId: `${this.clientId}:${seq}:${this.unanswered.values().next().value!}` };
      retrySafe = true;
    }
    const fn = (this.client as unknown as Record<string, unknown>)[method] as Parameters<typeof callUnary<Req, Res>>[1];
    if (typeof fn !== 'function') throw new GfsError('ENOSYS', `master has no method ${method}`);
    const context = `master ${method}`;
    const timeout = this.opts.masterCallTimeoutMs;
    const session = this.session;
    const once = session
      ? () => this.sessionReady(() => session.call<Req, Res>(method, req, timeout, context))
      : () => callUnary<Req, Res>(this.client, fn, req, timeout, context);
    const answer = retry(
      () => (this.stats ? this.stats.time(`master.${method}`, once) : once()),
      {
        attempts: Number.MAX_SAFE_INTEGER,
        baseDelayMs: RETRY_BASE_MS,
        maxDelayMs: RETRY_MAX_DELAY_MS,
        deadline: Date.now() + this.opts.masterRetryWindowMs,
        retryable: (err) =>
          err instanceof GfsError &&
          (err.grpcCode === GrpcStatus.UNAVAILABLE || (retrySafe && err.retryable)),
        onRetry: (err, attempt) => {
          if (attempt === 1) this.opts.log?.warn({ rpc: method, err: (err as Error).message }, 'master call failed; retrying');
        },
      },
    );
    if (seq) {
      const answered = () => void this.unanswered.delete(seq);
      answer.then(answered, answered);
    }
    return answer;
  }

  close(): void {
    this.session?.close();
    this.client.close();
  }
}
