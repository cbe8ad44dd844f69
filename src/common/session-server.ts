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

/**
 * A handler for a `Session(stream CallFrame) returns (stream ReplyFrame)` method that serves
 * every unary method of `def` with `handlers` (already wrapped, e.g. by secureService).
 */
export function sessionHandler(
  def: grpc.ServiceDefinition,
  handlers: Record<string, unknown>,
  log: Logger,
): grpc.handleBidiStreamingCall<CallFrameIn, ReplyFrameOut> {
  return (stream) => {
    let peer = '?';
    try {
      peer = stream.getPeer();
    } catch {
      // a stream that is already gone has no peer
    }
    const running = new Set<SessionCall>();
    let open = true;
    const close = () => {
      if (!open) return;
      open = false;
      for (const c of running) {
        c.cancelled = true;
        c.emit('cancelled');
      }
      running.clear();
    };
    const reply = (f: ReplyFrameOut) => {
      if (open) stream.write(f);
    };
    const fail = (id: number, err: GfsError) => reply({ id, code: err.grpcCode, details: err.message, errno: err.code });

    stream.write({ id: 0 }); // the greeting: calls sent from now on reach this handler
    stream.on('data', (f: CallFrameIn) => {
      const id = Number(f.id);
      const md = def[f.method];
      const handler = handlers[f.method];
      if (!Number.isSafeInteger(id) || id <= 0) return fail(0, new GfsError('EINVAL', `session frame with bad id ${String(f.id)}`));
      if (!md || md.requestStream || md.responseStream || typeof handler !== 'function') {
        return fail(id, new GfsError('ENOSYS', `no unary method ${JSON.stringify(String(f.method).slice(0, 64))} in a session`));
      }
      let request: unknown;
      try {
        request = md.requestDeserialize(f.body ?? Buffer.alloc(0));
      } catch (err) {
        return fail(id, new GfsError('EINVAL', `${f.method}: undecodable request: ${(err as Error).message}`));
      }
      const call = new SessionCall(request, stream.metadata, peer);
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
        let body: Buffer;
        try {
          body = md.responseSerialize(res);
        } catch (e) {
          log.error({ rpc: f.method, err: (e as Error).message }, 'session reply could not be encoded');
          return fail(id, new GfsError('EIO', `${f.method}: reply could not be encoded`));
        }
        reply({ id, body });
      };
      try {
        (handler as UnaryFn)(call as unknown as grpc.ServerUnaryCall<unknown, unknown>, done);
      } catch (err) {
        log.error({ rpc: f.method, err: (err as Error).message }, 'session handler crashed');
        done({ code: grpc.status.INTERNAL, details: `${f.method}: internal error` } as grpc.ServiceError);
      }
    });
    stream.on('end', () => {
      close();
      stream.end();
    });
    stream.on('error', close);
    stream.on('cancelled', close);
    stream.on('close', close);
  };
}
