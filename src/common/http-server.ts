// The small HTTP side of every gfs process (status pages, /api/status, /metrics, /healthz):
// node:http, GET/HEAD only, a fixed table of routes, every answer computed on request.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { GfsError } from './errors.js';
import type { Logger } from './logger.js';
import { metricsText, PROMETHEUS_CONTENT_TYPE } from './metrics.js';

export interface HttpReply {
  status?: number;
  type: string;
  body: string | Buffer;
}

export type Route = (req: IncomingMessage) => HttpReply | Promise<HttpReply>;

export interface HttpHandle {
  /** "http://host:port" (IPv6 in brackets). */
  url: string;
  port: number;
  close(): Promise<void>;
}

export const json = (v: unknown, status = 200): HttpReply => ({ status, type: 'application/json; charset=utf-8', body: JSON.stringify(v) });
export const html = (body: string): HttpReply => ({ type: 'text/html; charset=utf-8', body });
export const text = (body: string, status = 200): HttpReply => ({ status, type: 'text/plain; charset=utf-8', body });

/** The routes every gfs process serves: /metrics (Prometheus text) and /healthz. */
export function commonRoutes(healthy: () => boolean | string = () => true): Record<string, Route> {
  return {
    '/metrics': async () => ({ type: PROMETHEUS_CONTENT_TYPE, body: await metricsText() }),
    '/healthz': () => {
      const h = healthy();
      return h === true ? text('ok\n') : text(`unhealthy: ${h === false ? 'not ready' : h}\n`, 503);
    },
  };
}

/** Listens on host:port (0 = ephemeral) and serves `routes`; resolves once bound. */
export async function startHttpServer(host: string, port: number, routes: Record<string, Route>, log: Logger): Promise<HttpHandle> {
  const server: Server = createServer((req, res) => void serve(req, res));
  async function serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0]!;
    const route = routes[path];
    let reply: HttpReply;
    if (req.method !== 'GET' && req.method !== 'HEAD') reply = { ...text('method not allowed\n', 405) };
    else if (!route) reply = text(`not found: ${path}\n`, 404);
    else {
      try {
        reply = await route(req);
      } catch (err) {
        log.warn({ path, err: (err as Error).message }, 'http handler failed');
        reply = text(`error: ${(err as Error).message}\n`, 500);
      }
    }
    const body = typeof reply.body === 'string' ? Buffer.from(reply.body) : reply.body;
    res.writeHead(reply.status ?? 200, { 'content-type': reply.type, 'content-length': body.length, 'cache-control': 'no-store' });
    res.end(req.method === 'HEAD' ? undefined : body);
  }
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => reject(new GfsError('EBUSY', `cannot listen for HTTP on ${host}:${port}: ${err.message}`)));
    server.listen(port, host, () => resolve());
  });
  server.on('error', (err) => log.warn({ err: err.message }, 'http server error'));
  const addr = server.address();
  const bound = typeof addr === 'object' && addr ? addr.port : port;
  const shownHost = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  log.info({ url: `http://${shownHost}:${bound}` }, 'http listening');
  return {
    url: `http://${shownHost}:${bound}`,
    port: bound,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
