// Sessions over plain TCP (or TLS): the unary calls a session carries (session-server.ts),
// framed as on the data channel (data-frame.ts) instead of as messages of a gRPC stream. A
// master call over the gRPC session cost ~0.5 ms of round trip at idle here and 1-2 ms under
// load, most of it in HTTP/2 and grpc-js on both ends; a mount makes several per file.
//
// A connection opens with a Hello (the caller's credential, as on the data channel); the
// server answers Ok, or Err and closes. Then each Call frame names a method in its header and
// carries the encoded request as payload; its reply is Ok with the encoded reply as payload, or
// Err with the status. Every call goes through the same wrapped handlers as a gRPC call
// (authentication from the Hello's credential, exports, per-peer bounds, shape checks).
import net from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { AUTH_METADATA_KEY, type TlsFiles } from './auth.js';
import { errorCodec, helloCodec } from './data-codec.js';
import { DATA_PROTOCOL_VERSION, FrameReader, Kind } from './data-frame.js';
import { FrameWriter } from './frame-writer.js';
import { listenFramed, type FramedListener, type PieceHandler } from './framed-socket.js';
import { GfsError } from './errors.js';
import type { Logger } from './logger.js';
import type { SessionDispatch } from './session-server.js';

/** Longest method name a Call frame may carry. */
const METHOD_NAME_MAX = 64;
/**
 * Replies a connection may have waiting to be sent before its calls are no longer read: a
 * caller that sends without reading cannot make the master buffer without bound.
 */
export const SESSION_SEND_HIGH_WATER = 16 * 1024 * 1024;
const EMPTY = new Uint8Array(0);

export interface SessionListenerOptions {
  host: string;
  /** 0: an ephemeral port. */
  port: number;
  sessions: SessionDispatch;
  tls?: TlsFiles;
  log: Logger;
}

export type SessionListener = FramedListener;

export async function listenSessions(o: SessionListenerOptions): Promise<SessionListener> {
  const serve = (socket: net.Socket): PieceHandler => {
    const host = socket.remoteAddress ?? '?';
    const peer = `${host.includes(':') ? `[${host}]` : host}:${socket.remotePort ?? 0}`;
    const writer = new FrameWriter(socket);
    let closed = false;
    let session: ReturnType<SessionDispatch> | undefined;
    const refuse = (id: number, err: GfsError) => {
      writer.write(Kind.Err, id, errorCodec.encode({ code: err.grpcCode, errno: err.code, message: err.message }));
      closed = true;
      socket.end();
    };
    const reader = new FrameReader((f) => {
      if (closed) return;
      if (!session) {
        if (f.kind !== Kind.Hello) return refuse(f.id, new GfsError('EINVAL', 'session: the first frame must be a Hello'));
        let auth: string;
        try {
          const h = helloCodec.decode(f.header);
          if (h.version !== DATA_PROTOCOL_VERSION) throw new GfsError('EINVAL', `session: protocol version ${h.version}, this server speaks ${DATA_PROTOCOL_VERSION}`);
          auth = h.auth;
        } catch (err) {
          return refuse(f.id, err instanceof GfsError ? err : new GfsError('EINVAL', String(err)));
        }
        // The credential is checked on every call, by the handlers, as a gRPC call's metadata is.
        const md = new grpc.Metadata();
        if (auth) md.set(AUTH_METADATA_KEY, auth);
        session = o.sessions(md, peer, (r) => {
          if (closed) return;
          if (r.code) writer.write(Kind.Err, r.id, errorCodec.encode({ code: r.code, errno: r.errno ?? '', message: r.details ?? '' }));
          else writer.write(Kind.Ok, r.id, EMPTY, r.body);
          if (socket.writableLength > SESSION_SEND_HIGH_WATER && !socket.isPaused()) {
            socket.pause();
            socket.once('drain', () => socket.resume());
          }
        });
        writer.write(Kind.Ok, f.id, EMPTY);
        return;
      }
      if (f.kind !== Kind.Call || f.header.length > METHOD_NAME_MAX) {
        return refuse(f.id, new GfsError('EINVAL', `session: unexpected frame (kind ${f.kind}, header of ${f.header.length} bytes)`));
      }
      session.call(f.id, f.header.toString('utf8'), f.payload);
    }, {}, true);
    socket.on('error', (err) => o.log.debug({ peer, err: err.message }, 'session connection error'));
    socket.on('close', () => {
      closed = true;
      session?.close();
    });
    return (piece: Buffer) => {
      try {
        reader.push(piece);
      } catch (err) {
        o.log.debug({ peer, err: (err as Error).message }, 'session: bad frame; closing');
        closed = true;
        socket.destroy();
      }
    };
  };
  return listenFramed(o.host, o.port, o.tls, 'sessions', serve);
}
