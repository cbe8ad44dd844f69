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

/** Connects to HOST:PORT; over TLS when `tlsFiles` names a CA or a client certificate. */
export function connectFramed(addr: string, tlsFiles?: TlsFiles): net.Socket {
  const { host, port } = parseAddr(addr);
  const h = host.replace(/^\[|\]$/g, '');
  const socket =
    tlsFiles && (tlsFiles.ca || tlsFiles.cert)
      ? tls.connect({
          host: h,
          port,
          ca: tlsFiles.ca ? readFileSync(tlsFiles.ca) : undefined,
          cert: tlsFiles.cert ? readFileSync(tlsFiles.cert) : undefined,
          key: tlsFiles.key ? readFileSync(tlsFiles.key) : undefined,
          servername: net.isIP(h) ? undefined : h,
        })
      : net.connect({ host: h, port });
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
