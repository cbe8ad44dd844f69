// The TCP (or TLS) ends that carry data-channel frames (data-frame.ts): the chunkservers' data
// channel (data-conn.ts, chunkserver/data-server.ts) and the master's session port
// (session-socket.ts, session-listener.ts). Connect and listen alike, in one place.
import { readFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import type { TlsFiles } from './auth.js';
import { GfsError } from './errors.js';
import { parseAddr } from './rpc.js';

const KEEPALIVE_MS = 10_000;
/**
 * Bytes a plain TCP connection reads at a time, into a buffer it reuses (net's `onread`).
 * Without it every read of a socket allocates a fresh 64 KiB buffer, which V8 counts as new
 * external memory: a 512 MiB read on the mount made 8,000 of them and collecting them was most
 * of the mount's CPU; a 512 MiB write cost each chunkserver some twenty full collections.
 */
export const READ_PIECE_BYTES = 256 * 1024;

/** Receives the bytes of a connection as they arrive; a piece is valid only during the call. */
export type PieceHandler = (piece: Buffer) => void;

/**
 * The one read buffer of every plain connection of the process: libuv reads a socket into it
 * and hands the bytes to that socket's handler before it reads any other socket, and handlers
 * copy what they keep. A buffer per connection would cost a master with a thousand client
 * sessions 256 MiB.
 */
let shared: Buffer | undefined;

function pieceReader(onPiece: PieceHandler): net.OnReadOpts {
  return {
    buffer: (shared ??= Buffer.allocUnsafe(READ_PIECE_BYTES)),
    callback: (n: number, buf: Uint8Array) => {
      onPiece((buf as Buffer).subarray(0, n));
      return true; // false would pause reading
    },
  };
}

/**
 * Connects to HOST:PORT; over TLS when `tlsFiles` names a CA or a client certificate.
 * `onPiece` receives the bytes that arrive instead of 'data' events; a piece is valid only
 * during the call (over plain TCP it is a view of a buffer reused by the next read).
 */
export function connectFramed(addr: string, tlsFiles: TlsFiles | undefined, onPiece: PieceHandler): net.Socket {
  const { host, port } = parseAddr(addr);
  const h = host.replace(/^\[|\]$/g, '');
  const plain = !(tlsFiles && (tlsFiles.ca || tlsFiles.cert));
  const socket = !plain
    ? tls.connect({
        host: h,
        port,
        ca: tlsFiles.ca ? readFileSync(tlsFiles.ca) : undefined,
        cert: tlsFiles.cert ? readFileSync(tlsFiles.cert) : undefined,
        key: tlsFiles.key ? readFileSync(tlsFiles.key) : undefined,
        servername: net.isIP(h) ? undefined : h,
      })
    : net.connect({ host: h, port, onread: pieceReader(onPiece) });
  if (!plain) socket.on('data', onPiece);
  socket.setNoDelay(true);
  socket.setKeepAlive(true, KEEPALIVE_MS);
  return socket;
}

export interface FramedListener {
  port: number;
  /** Connections open now. */
  readonly connections: number;
  /** Stops listening and drops every connection. */
  close(): Promise<void>;
}

/**
 * The accepted plain-TCP `socket` as one that reads into a reused buffer, which net.Server
 * cannot be asked for: a new Socket over the same handle, given up by the original (accepted
 * paused, so it never read). Falls back to 'data' events if the handle is not what this
 * expects, so a Node that changes it costs speed, not correctness.
 */
function adopt(socket: net.Socket, onPiece: PieceHandler): net.Socket {
  const s = socket as unknown as { _handle?: { readStart?: unknown } | null };
  const handle = s._handle;
  if (!handle || typeof handle.readStart !== 'function') {
    socket.on('data', onPiece);
    socket.resume();
    return socket;
  }
  const own = new net.Socket({ handle, readable: true, writable: true, onread: pieceReader(onPiece) } as net.SocketConstructorOpts);
  s._handle = null;
  socket.destroy(); // the server counts the connection closed; its handle lives on in `own`
  return own;
}

/**
 * Listens on host:port (0 = any free port), over TLS when `tlsFiles` has a certificate, and
 * hands each connection to `serve`, which returns what receives its bytes (valid only during
 * each call: over plain TCP they are read into one reused buffer). `what` names the listener
 * in errors.
 */
export async function listenFramed(host: string, port: number, tlsFiles: TlsFiles | undefined, what: string, serve: (socket: net.Socket) => PieceHandler): Promise<FramedListener> {
  const sockets = new Set<net.Socket>();
  const track = (socket: net.Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.setNoDelay(true);
  };
  const acceptTls = (socket: net.Socket) => {
    track(socket);
    socket.on('data', serve(socket));
  };
  const acceptTcp = (accepted: net.Socket) => {
    let onPiece: PieceHandler | undefined;
    // Pieces arrive on a later turn of the loop, after serve has returned.
    const socket = adopt(accepted, (piece) => onPiece!(piece));
    track(socket);
    onPiece = serve(socket);
  };
  const server = tlsFiles?.cert
    ? tls.createServer({ cert: readFileSync(tlsFiles.cert), key: readFileSync(tlsFiles.key!), ca: tlsFiles.ca ? readFileSync(tlsFiles.ca) : undefined }, acceptTls)
    : net.createServer({ pauseOnConnect: true }, acceptTcp);
  const bound = await new Promise<number>((resolve, reject) => {
    server.once('error', (err) => reject(new GfsError('EBUSY', `cannot listen on ${host}:${port} (${what}): ${err.message}`)));
    server.listen(port, host.replace(/^\[|\]$/g, ''), () => resolve((server.address() as net.AddressInfo).port));
  });
  return {
    port: bound,
    get connections() {
      return sockets.size;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
