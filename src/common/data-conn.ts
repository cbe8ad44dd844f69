// The calling side of the data channel (data-frame.ts): one TCP (or TLS) connection per
// chunkserver, requests multiplexed on it by id, each with its own deadline. A connection
// opens with a Hello carrying the caller's credential; a refused Hello fails every request
// with the server's reason. A connection that breaks fails the requests on it (UNAVAILABLE:
// callers retry, as after a dropped gRPC call) and the next request opens a new one. Frames
// are written in the order requests are made, so requests to one server arrive in order.
import net from 'node:net';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { errorCodec, helloCodec } from './data-codec.js';
import { DATA_PROTOCOL_VERSION, FrameReader, Kind, type Frame } from './data-frame.js';
import { FrameWriter } from './frame-writer.js';
import { connectFramed } from './framed-socket.js';
import { fromStatus, GfsError, withoutCode } from './errors.js';
import type { TlsFiles } from './auth.js';

/** Connecting and saying Hello must finish within this. */
export const DATA_CONNECT_TIMEOUT_MS = 5_000;
/**
 * Deadlines are checked this often, all requests of a connection in one pass, so a request
 * fails at most this late. A timer per request cost a small read two timer-list operations and
 * an object that thousands of reads in flight kept alive through every young-generation GC.
 */
export const DEADLINE_SWEEP_MS = 100;

export interface DataConnOptions {
  /** The `gfs-auth` value (auth.ts authValue); undefined against servers that check nothing. */
  auth?: string;
  /** TLS with these files (the CA that signed the servers' certificates). */
  tls?: TlsFiles;
}

interface Pending {
  resolve(f: Frame): void;
  reject(err: GfsError): void;
  /** performance.now() after which it fails with ETIMEDOUT. */
  deadline: number;
  timeoutMs: number;
  context: string;
  /** Where the payload of the Ok reply goes when it spans socket pieces (at most its length). */
  into?: Buffer;
  /** The request's payload is still queued in this process. */
  unsent: boolean;
}

const lost = (addr: string, why: string) => new GfsError('EHOSTDOWN', `data channel to ${addr}: ${why}`, GrpcStatus.UNAVAILABLE);

/** A request failed with an Err frame: the server's status, errno and message. */
export function errorOfFrame(f: Frame, context: string): GfsError {
  const e = errorCodec.decode(f.header);
  return fromStatus(e.code, e.message, e.errno, context);
}

export class DataConn {
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private failure: GfsError | undefined;
  private readonly writer: FrameWriter;
  private sweeper: NodeJS.Timeout | undefined;

  private readonly reader = new FrameReader(
    (f) => this.onFrame(f),
    {
      // A read's bytes go straight into the caller's buffer: no copy of our own, no fresh memory.
      sink: (kind, id, _header, bytes) => {
        const into = kind === Kind.Ok ? this.pending.get(id)?.into : undefined;
        return into && bytes <= into.length ? { buf: into.subarray(0, bytes), release: () => undefined } : undefined;
      },
    },
    true,
  );

  private constructor(
    readonly addr: string,
    private readonly socket: net.Socket,
  ) {
    this.writer = new FrameWriter(socket);
    socket.on('error', (err) => this.fail(lost(addr, err.message)));
    socket.on('close', () => this.fail(lost(addr, 'connection closed')));
  }

  /** Connects and says Hello; rejects with the server's refusal or a connection error. */
  static async open(addr: string, opts: DataConnOptions = {}, timeoutMs = DATA_CONNECT_TIMEOUT_MS): Promise<DataConn> {
    // The socket's first bytes arrive on a later turn of the loop, once `conn` is set.
    let conn: DataConn | undefined;
    const socket = connectFramed(addr, opts.tls, (piece) => conn!.onPiece(piece));
    conn = new DataConn(addr, socket);
    const hello = conn.request(Kind.Hello, helloCodec.encode({ version: DATA_PROTOCOL_VERSION, auth: opts.auth ?? '' }), undefined, timeoutMs, `data channel hello to ${addr}`);
    try {
      await hello;
    } catch (err) {
      conn.close();
      throw err;
    }
    return conn;
  }

  get alive(): boolean {
    return this.failure === undefined;
  }

  /** Requests waiting for their reply. */
  get inFlight(): number {
    return this.pending.size;
  }

  /** Bytes written but not yet sent to the kernel. */
  get buffered(): number {
    return this.socket.writableLength;
  }

  /**
   * Sends one request (header, and payload bytes if any) and resolves with its Ok frame; an
   * Err frame rejects with the server's error, a timeout with ETIMEDOUT.
   * `into`: where the reply's payload may go directly. `sent`: called once the payload has left
   * this process (or will never be sent): the caller may reuse its memory from then on.
   */
  request(kind: Kind, header: Uint8Array, payload: Uint8Array | undefined, timeoutMs: number, context: string, into?: Buffer, sent?: () => void): Promise<Frame> {
    if (this.failure) {
      sent?.();
      return Promise.reject(this.failure);
    }
    const id = this.nextId;
    this.nextId = this.nextId >= 0xffffffff ? 1 : this.nextId + 1;
    return new Promise<Frame>((resolve, reject) => {
      const p: Pending = { resolve, reject, deadline: performance.now() + timeoutMs, timeoutMs, context, into, unsent: !!payload && payload.length > 0 };
      this.pending.set(id, p);
      this.sweeper ??= setInterval(this.sweep, DEADLINE_SWEEP_MS).unref();
      this.writer.write(kind, id, header, payload, () => {
        p.unsent = false;
        sent?.();
      });
    });
  }

  /** Fails the requests past their deadline; stops itself once nothing is pending. */
  private readonly sweep = (): void => {
    if (this.pending.size === 0) {
      clearInterval(this.sweeper);
      this.sweeper = undefined;
      return;
    }
    const now = performance.now();
    for (const [id, p] of this.pending) {
      if (p.deadline > now) continue;
      this.pending.delete(id);
      p.reject(new GfsError('ETIMEDOUT', `${p.context}: no answer within ${p.timeoutMs} ms`));
      // A late reply could still be streaming into the caller's buffer, or our payload still
      // wait in the socket, and the caller now reuses that memory: this connection must not
      // move another byte.
      if (p.into || p.unsent) this.fail(lost(this.addr, `a request got no answer within ${p.timeoutMs} ms`));
    }
  };

  close(): void {
    this.fail(lost(this.addr, 'closed by this client'));
  }

  private onPiece(piece: Buffer): void {
    try {
      this.reader.push(piece);
    } catch (err) {
      this.fail(lost(this.addr, (err as Error).message));
    }
  }

  private onFrame(f: Frame): void {
    const p = this.pending.get(f.id);
    if (!p) return; // timed out meanwhile
    this.pending.delete(f.id);
    if (f.kind === Kind.Ok) p.resolve(f);
    else if (f.kind === Kind.Err) {
      let err: GfsError;
      try {
        err = errorOfFrame(f, p.context);
      } catch (e) {
        err = e as GfsError;
      }
      p.reject(err);
    } else p.reject(new GfsError('EIO', `${p.context}: unexpected frame kind ${f.kind}`));
  }

  private fail(err: GfsError): void {
    if (this.failure) return;
    this.failure = err;
    this.socket.destroy();
    clearInterval(this.sweeper);
    this.sweeper = undefined;
    for (const p of this.pending.values()) {
      p.reject(new GfsError(err.code, `${p.context}: ${withoutCode(err.message)}`, err.grpcCode));
    }
    this.pending.clear();
  }
}

/**
 * One data connection per server address, opened on first use and again after it breaks.
 * Requests to one address leave in the order they are made: while a connection is being
 * opened they queue, and are written, in order, before any later request.
 */
export class DataConnPool {
  private readonly conns = new Map<string, Slot>();
  private closed = false;

  constructor(private readonly opts: DataConnOptions = {}) {}

  /** `into`, `sent`: see DataConn.request. */
  request(addr: string, kind: Kind, header: Uint8Array, payload: Uint8Array | undefined, timeoutMs: number, context: string, into?: Buffer, sent?: () => void): Promise<Frame> {
    if (this.closed) {
      sent?.();
      return Promise.reject(new GfsError('EBADF', 'data connections are closed'));
    }
    let slot = this.conns.get(addr);
    if (slot?.conn && !slot.conn.alive) slot = undefined;
    if (!slot) slot = this.open(addr);
    // An open connection takes the frame now: a primary's forwards are on the wire before its
    // own disk write starts.
    if (slot.conn) return slot.conn.request(kind, header, payload, timeoutMs, context, into, sent);
    return new Promise<Frame>((resolve, reject) => {
      slot!.waiting.push((conn, err) => {
        if (!conn) {
          sent?.();
          reject(err);
          return;
        }
        conn.request(kind, header, payload, timeoutMs, context, into, sent).then(resolve, reject);
      });
    });
  }

  private open(addr: string): Slot {
    const slot: Slot = { waiting: [] };
    this.conns.set(addr, slot);
    DataConn.open(addr, this.opts).then(
      (conn) => {
        if (this.closed || this.conns.get(addr) !== slot) conn.close();
        else slot.conn = conn;
        // In order, before any later request can use the connection.
        for (const w of slot.waiting.splice(0)) w(slot.conn, lost(addr, 'the pool was closed'));
      },
      (err: GfsError) => {
        if (this.conns.get(addr) === slot) this.conns.delete(addr);
        for (const w of slot.waiting.splice(0)) w(undefined, err);
      },
    );
    return slot;
  }

  close(): void {
    this.closed = true;
    for (const slot of this.conns.values()) slot.conn?.close();
    this.conns.clear();
  }
}

interface Slot {
  conn?: DataConn;
  waiting: Array<(conn: DataConn | undefined, err: GfsError) => void>;
}
