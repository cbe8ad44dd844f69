// The client side of a session (session-server.ts): unary calls of a service sent as frames
// over one long-lived bidirectional stream instead of one HTTP/2 stream each. The stream is
// opened on first use and again after it breaks; calls wait for the server's greeting before
// they are written, so a call on a stream that never came up was certainly not delivered.
// Every call has its own deadline. When the stream breaks, every call still waiting fails with
// UNAVAILABLE, as a plain unary call does when its connection drops.
import type * as grpc from '@grpc/grpc-js';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { fromServiceError, fromStatus, GfsError, withoutCode } from './errors.js';

export interface CallFrameOut {
  id: number;
  method: string;
  body: Buffer;
}

export interface ReplyFrameIn {
  id: number;
  body: Buffer;
  code: number;
  details: string;
  errno: string;
}

const TRANSPORT_CODES = new Set<number>([GrpcStatus.UNAVAILABLE, GrpcStatus.CANCELLED, GrpcStatus.INTERNAL, GrpcStatus.UNKNOWN, GrpcStatus.DEADLINE_EXCEEDED]);

/** What carries a session: the gRPC Session stream, or a TCP connection (session-socket.ts). */
export interface SessionStream {
  write(f: CallFrameOut): boolean;
  end(): void;
  cancel(): void;
  on(event: 'data', listener: (f: ReplyFrameIn) => void): this;
  on(event: 'error', listener: (err: Error) => void): this;
  on(event: 'end' | 'close', listener: () => void): this;
}

/** Call ids stay within a u32 (the TCP carrier's frame id); 0 is the greeting. */
const MAX_CALL_ID = 0xffffffff;

interface Pending {
  readonly id: number;
  readonly frame: CallFrameOut;
  readonly decode: (body: Buffer) => unknown;
  readonly context: string;
  resolve(v: unknown): void;
  reject(err: unknown): void;
  timer: NodeJS.Timeout;
}

export class CallSession {
  private stream: SessionStream | undefined;
  private ready = false;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private queue: Pending[] = [];
  private closed = false;

  /** `open` starts a new Session stream; `def` is the service whose unary methods are called. */
  constructor(
    private readonly open: () => SessionStream,
    private readonly def: grpc.ServiceDefinition,
  ) {}

  /** Calls in flight or waiting for the stream. */
  get inFlight(): number {
    return this.pending.size;
  }

  call<Req, Res>(method: string, req: Req, timeoutMs: number, context: string): Promise<Res> {
    if (this.closed) return Promise.reject(new GfsError('EBADF', `${context}: client is closed`));
    const md = this.def[method];
    if (!md || md.requestStream || md.responseStream) return Promise.reject(new GfsError('ENOSYS', `${context}: no unary method ${method}`));
    let body: Buffer;
    try {
      body = md.requestSerialize(req);
    } catch (err) {
      return Promise.reject(new GfsError('EINVAL', `${context}: request cannot be encoded: ${(err as Error).message}`));
    }
    return new Promise<Res>((resolve, reject) => {
      const id = this.nextId;
      this.nextId = id >= MAX_CALL_ID ? 1 : id + 1;
      const p: Pending = {
        id,
        frame: { id, method, body },
        decode: md.responseDeserialize as (b: Buffer) => unknown,
        context,
        resolve: resolve as (v: unknown) => void,
        reject,
        timer: setTimeout(() => this.expire(p, timeoutMs), timeoutMs),
      };
      this.pending.set(id, p);
      if (!this.stream) this.connect();
      if (this.ready) this.stream!.write(p.frame);
      else this.queue.push(p);
    });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    const s = this.stream;
    this.stream = undefined;
    this.failAll(new GfsError('EBADF', 'client is closed', GrpcStatus.CANCELLED));
    s?.end();
    s?.cancel();
  }

  private connect(): void {
    const s = this.open();
    this.stream = s;
    this.ready = false;
    s.on('data', (f: ReplyFrameIn) => {
      if (s !== this.stream) return;
      const id = Number(f.id);
      if (id === 0) {
        if (f.code) return this.broken(s, fromStatus(f.code, f.details, f.errno, 'session'));
        this.ready = true;
        const queued = this.queue;
        this.queue = [];
        for (const p of queued) if (this.pending.has(p.id)) s.write(p.frame);
        return;
      }
      const p = this.pending.get(id);
      if (!p) return; // timed out meanwhile
      this.pending.delete(id);
      clearTimeout(p.timer);
      if (f.code) {
        p.reject(fromStatus(f.code, f.details, f.errno, p.context));
        return;
      }
      let res: unknown;
      try {
        res = p.decode(f.body);
      } catch (err) {
        p.reject(new GfsError('EIO', `${p.context}: undecodable reply: ${(err as Error).message}`));
        return;
      }
      p.resolve(res);
    });
    s.on('error', (err) => this.broken(s, fromServiceError(err, 'session')));
    s.on('end', () => this.broken(s, new GfsError('EHOSTDOWN', 'session ended by the server', GrpcStatus.UNAVAILABLE)));
    s.on('close', () => this.broken(s, new GfsError('EHOSTDOWN', 'session closed', GrpcStatus.UNAVAILABLE)));
  }

  /** The stream is gone: every call waiting on it fails as a dropped unary call would. */
  private broken(s: SessionStream, cause: GfsError): void {
    if (s !== this.stream) return;
    this.stream = undefined;
    this.ready = false;
    // A refusal of the whole session (wrong credential, overload) is passed on as it is;
    // anything else is a lost connection, which callers retry as they would a dropped call.
    const lost = TRANSPORT_CODES.has(cause.grpcCode);
    this.failAll(lost ? new GfsError('EHOSTDOWN', cause.message, GrpcStatus.UNAVAILABLE) : cause);
    s.cancel();
  }

  private failAll(err: GfsError): void {
    const all = [...this.pending.values()];
    this.pending.clear();
    this.queue = [];
    for (const p of all) {
      clearTimeout(p.timer);
      p.reject(new GfsError(err.code, `${p.context}: ${withoutCode(err.message)}`, err.grpcCode));
    }
  }

  private expire(p: Pending, ms: number): void {
    if (!this.pending.delete(p.id)) return;
    const i = this.queue.indexOf(p);
    if (i >= 0) this.queue.splice(i, 1);
    p.reject(new GfsError('ETIMEDOUT', `${p.context}: no answer within ${ms} ms`));
  }
}
