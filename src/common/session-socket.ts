// The calling side of a session over TCP (or TLS) (session-listener.ts), shaped as the gRPC
// Session stream CallSession speaks to (session-client.ts): it takes call frames, and gives
// back reply frames, the server's greeting (id 0) first, once the Hello is accepted.
import { EventEmitter } from 'node:events';
import net from 'node:net';
import { status as GrpcStatus } from '@grpc/grpc-js';
import type { TlsFiles } from './auth.js';
import { errorCodec, helloCodec } from './data-codec.js';
import { DATA_PROTOCOL_VERSION, FrameReader, Kind, type Frame } from './data-frame.js';
import { FrameWriter } from './frame-writer.js';
import { connectFramed } from './framed-socket.js';
import { GfsError } from './errors.js';
import type { CallFrameOut, SessionStream } from './session-client.js';

/** Connecting and having the Hello answered must take at most this. */
export const SESSION_CONNECT_TIMEOUT_MS = 5_000;
/** The Hello's frame id; call ids start at 1. */
const HELLO_ID = 0;

export interface SessionSocketOptions {
  /** The `gfs-auth` value (auth.ts authValue); undefined against servers that check nothing. */
  auth?: string;
  tls?: TlsFiles;
  /** Called when no session came up (refused connection, no Hello answer): the address may be old. */
  onConnectFailed?: () => void;
}

class SessionSocket extends EventEmitter {
  private readonly writer: FrameWriter;
  private up = false;
  private done = false;
  private readonly timer: NodeJS.Timeout;
  private readonly reader = new FrameReader((f) => this.onFrame(f), {}, true);

  constructor(
    private readonly addr: string,
    private readonly socket: net.Socket,
    private readonly opts: SessionSocketOptions,
  ) {
    super();
    this.writer = new FrameWriter(socket);
    this.timer = setTimeout(() => this.lost(`no session within ${SESSION_CONNECT_TIMEOUT_MS} ms`), SESSION_CONNECT_TIMEOUT_MS);
    this.timer.unref();
    socket.on('error', (err) => this.lost(err.message));
    socket.on('end', () => this.lost('connection closed by the master'));
    socket.on('close', () => this.lost('connection closed'));
    this.writer.write(Kind.Hello, HELLO_ID, helloCodec.encode({ version: DATA_PROTOCOL_VERSION, auth: opts.auth ?? '' }));
  }

  write(f: CallFrameOut): boolean {
    if (!this.done) this.writer.write(Kind.Call, f.id, Buffer.from(f.method, 'utf8'), f.body);
    return true;
  }

  end(): void {
    this.socket.end();
  }

  cancel(): void {
    this.done = true;
    clearTimeout(this.timer);
    this.socket.destroy();
  }

  /** Bytes from the socket (valid only during the call). */
  push(piece: Buffer): void {
    try {
      this.reader.push(piece);
    } catch (err) {
      this.lost((err as Error).message);
    }
  }

  private onFrame(f: Frame): void {
    if (f.id === HELLO_ID && !this.up) {
      clearTimeout(this.timer);
      if (f.kind === Kind.Ok) {
        this.up = true;
        this.emit('data', { id: 0, body: Buffer.alloc(0), code: 0, details: '', errno: '' });
        return;
      }
      // A refusal (wrong credential, bad version) is the server's answer, passed on as it is.
      const e = decodeError(f);
      this.emit('data', { id: 0, body: Buffer.alloc(0), code: e.code || GrpcStatus.UNAVAILABLE, details: e.message, errno: e.errno });
      return;
    }
    if (f.kind === Kind.Ok) {
      this.emit('data', { id: f.id, body: f.payload, code: 0, details: '', errno: '' });
    } else if (f.kind === Kind.Err) {
      const e = decodeError(f);
      this.emit('data', { id: f.id, body: Buffer.alloc(0), code: e.code || GrpcStatus.UNKNOWN, details: e.message, errno: e.errno });
    } else {
      this.lost(`unexpected frame kind ${f.kind}`);
    }
  }

  private lost(why: string): void {
    if (this.done) return;
    this.done = true;
    clearTimeout(this.timer);
    if (!this.up) this.opts.onConnectFailed?.();
    this.socket.destroy();
    this.emit('error', new GfsError('EHOSTDOWN', `session with ${this.addr}: ${why}`, GrpcStatus.UNAVAILABLE));
  }
}

function decodeError(f: Frame): { code: number; errno: string; message: string } {
  try {
    return errorCodec.decode(f.header);
  } catch (err) {
    return { code: GrpcStatus.INTERNAL, errno: 'EIO', message: (err as Error).message };
  }
}

/** Opens a session with the listener at `addr` (HOST:PORT). */
export function openSessionSocket(addr: string, opts: SessionSocketOptions = {}): SessionStream {
  // The socket's first bytes arrive on a later turn of the loop, once `session` is set.
  let session: SessionSocket | undefined;
  const socket = connectFramed(addr, opts.tls, (piece) => session!.push(piece));
  session = new SessionSocket(addr, socket, opts);
  return session;
}
