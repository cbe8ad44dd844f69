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
 * Bytes a plain TCP connection made with `onPiece` reads at a time, into one buffer it keeps.
 * Without it every read of the socket allocates a fresh 64 KiB buffer: a 512 MiB read on the
 * mount made 8,000 of them, and collecting them was a sixth of the mount's CPU.
 */
export const READ_PIECE_BYTES = 256 * 1024;

/**
 * Connects to HOST:PORT; over TLS when `tlsFiles` names a CA or a client certificate.
 * `onPiece` receives the bytes that arrive instead of 'data' events; a piece is valid only
 * during the call (over plain TCP it is a view of a buffer reused by the next read).
 */
export function connectFramed(addr: string, tlsFiles?: TlsFiles, onPiece?: (piece: Buffer) => void): net.Socket {
  const { host, port } = parseAddr(addr);
  const h = host.replace(/^\[|\]$/g, '');
  const plain = !(tlsFiles && (tlsFiles.ca || tlsFiles.cert));
  const onread =
    onPiece && plain
      ? {
          buffer: Buffer.allocUnsafe(READ_PIECE_BYTES),
          callback: (n: number, buf: Uint8Array) => {
            onPiece((buf as Buffer).subarray(0, n));
            return true; // false would pause reading
          },
        }
      : undefined;
  const socket = !plain
    ? tls.connect({
        host: h,
        port,
        ca: tlsFiles.ca ? readFileSync(tlsFiles.ca) : undefined,
        cert: tlsFiles.cert ? readFileSync(tlsFiles.cert) : undefined,
        key: tlsFiles.key ? readFileSync(tlsFiles.key) : undefined,
        servername: net.isIP(h) ? undefined : h,
      })
    : net.connect({ host: h, port, onread });
  if (onPiece && !onread) socket.on('data', onPiece);
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
 * Listens on host:port (0 = any free port), over TLS when `tlsFiles` has a certificate, and
 * hands each connection to `serve`. `what` names the listener in errors.
 */
export async function listenFramed(host: string, port: number, tlsFiles: TlsFiles | undefined, what: string, serve: (socket: net.Socket) => void): Promise<FramedListener> {
  const sockets = new Set<net.Socket>();
  const accept = (socket: net.Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.setNoDelay(true);
    serve(socket);
  };
  const server = tlsFiles?.cert
    ? tls.createServer({ cert: readFileSync(tlsFiles.cert), key: readFileSync(tlsFiles.key!), ca: tlsFiles.ca ? readFileSync(tlsFiles.ca) : undefined }, accept)
    : net.createServer(accept);
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
