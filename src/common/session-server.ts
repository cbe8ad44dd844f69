// The server side of a session (proto: CallFrame / ReplyFrame): many unary calls of one
// service multiplexed over a single bidirectional stream. Each frame is dispatched to the
// service's own unary handler (the wrapped one: authentication, per-peer bounds and shape
// checks apply to every call as they do to a plain unary call), with a stand-in call object
// that carries the stream's metadata and peer. Replies go back in completion order.
import { EventEmitter } from 'node:events';
import * as grpc from '@grpc/grpc-js';
import { ERRNO_METADATA_KEY, GfsError } from './errors.js';
import type { Logger } from './logger.js';

export interface CallFrameIn {
  id: number;
  method: string;
  body: Buffer;
}

export interface ReplyFrameOut {
  id: number;
  body?: Buffer;
  code?: number;
  details?: string;
  errno?: string;
}

type UnaryFn = (call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => void;

/** The stand-in for grpc-js's ServerUnaryCall that a unary handler sees inside a session. */
class SessionCall extends EventEmitter {
  cancelled = false;
  constructor(
    readonly request: unknown,
    readonly metadata: grpc.Metadata,
    private readonly peer: string,
  ) {
    super();
  }
  getPeer(): string {
    return this.peer;
  }
  getDeadline(): grpc.Deadline {
    return Infinity;
  }
  getPath(): string {
    return '';
  }
  sendMetadata(): void {}
}

/** One session as the dispatcher sees it, whatever carries its frames. */
export interface SessionPeer {
  /** Handles one call frame; its reply goes to the session's `reply`. */
  call(id: number, method: string, body: Buffer | undefined): void;
  /** The carrier is gone: calls still running are cancelled, their replies dropped. */
  close(): void;
}

/** Opens a session: the caller's metadata (its credential), its peer, where replies go. */
export type SessionDispatch = (metadata: grpc.Metadata, peer: string, reply: (f: ReplyFrameOut) => void) => SessionPeer;

/**
 * Serves the unary methods of `def` with `handlers` (already wrapped, e.g. by secureService)
 * to sessions: each carrier (a gRPC stream, a TCP connection: session-listener.ts) opens one
 * with the caller's metadata, its peer, and where replies go.
 */
export function sessionDispatcher(
  def: grpc.ServiceDefinition,
  handlers: Record<string, unknown>,
  log: Logger,
): SessionDispatch {
  return (metadata, peer, send) => {
    const running = new Set<SessionCall>();
    let open = true;
    const reply = (f: ReplyFrameOut) => {
      if (open) send(f);
    };
    const fail = (id: number, err: GfsError) => reply({ id, code: err.grpcCode, details: err.message, errno: err.code });
    return {
      call(id, method, body) {
        const md = def[method];
        const handler = handlers[method];
        if (!Number.isSafeInteger(id) || id <= 0) return fail(0, new GfsError('EINVAL', `session frame with bad id ${String(id)}`));
        if (!md || md.requestStream || md.responseStream || typeof handler !== 'function') {
          return fail(id, new GfsError('ENOSYS', `no unary method ${JSON.stringify(String(method).slice(0, 64))} in a session`));
        }
        let request: unknown;
        try {
          request = md.requestDeserialize(body ?? Buffer.alloc(0));
        } catch (err) {
          return fail(id, new GfsError('EINVAL', `${method}: undecodable request: ${(err as Error).message}`));
        }
        const call = new SessionCall(request, metadata, peer);
        running.add(call);
        let answered = false;
        const done: grpc.sendUnaryData<unknown> = (err, res) => {
          if (answered) return;
          answered = true;
          running.delete(call);
          if (err) {
            const e = err as Partial<grpc.ServiceError>;
            const errno = e.metadata?.get(ERRNO_METADATA_KEY)?.[0];
            reply({ id, code: e.code ?? grpc.status.UNKNOWN, details: e.details ?? e.message ?? 'error', errno: typeof errno === 'string' ? errno : '' });
            return;
          }
          let out: Buffer;
          try {
            out = md.responseSerialize(res);
          } catch (e) {
            log.error({ rpc: method, err: (e as Error).message }, 'session reply could not be encoded');
            return fail(id, new GfsError('EIO', `${method}: reply could not be encoded`));
          }
          reply({ id, body: out });
        };
        try {
          (handler as UnaryFn)(call as unknown as grpc.ServerUnaryCall<unknown, unknown>, done);
        } catch (err) {
          log.error({ rpc: method, err: (err as Error).message }, 'session handler crashed');
          done({ code: grpc.status.INTERNAL, details: `${method}: internal error` } as grpc.ServiceError);
        }
      },
      close() {
        if (!open) return;
        open = false;
        for (const c of running) {
          c.cancelled = true;
          c.emit('cancelled');
        }
        running.clear();
      },
    };
  };
}

/**
 * A handler for a `Session(stream CallFrame) returns (stream ReplyFrame)` method that serves
 * every unary method of `def` with `handlers` (already wrapped, e.g. by secureService).
 */
export function sessionHandler(
  def: grpc.ServiceDefinition,
  handlers: Record<string, unknown>,
  log: Logger,
): grpc.handleBidiStreamingCall<CallFrameIn, ReplyFrameOut> {
  const dispatch = sessionDispatcher(def, handlers, log);
  return (stream) => {
    let peer = '?';
    try {
      peer = stream.getPeer();
    } catch {
      // a stream that is already gone has no peer
    }
    const session = dispatch(stream.metadata, peer, (f) => stream.write(f));
    stream.write({ id: 0 }); // the greeting: calls sent from now on reach this handler
    stream.on('data', (f: CallFrameIn) => session.call(Number(f.id), f.method, f.body));
    stream.on('end', () => {
      session.close();
      stream.end();
    });
    stream.on('error', () => session.close());
    stream.on('cancelled', () => session.close());
    stream.on('close', () => session.close());
  };
}
