// A chunkserver's HTTP port: `/` a small status page, `/api/status` JSON, `/metrics`
// (Prometheus) and `/healthz`. Gauges read the live objects at scrape time.
import { commonRoutes, html, json, startHttpServer, type HttpHandle } from '../common/http-server.js';
import type { Logger } from '../common/logger.js';
import { counterFn, gaugeFn, initProcessMetrics, labelledCounterFn, labelledGaugeFn, rpcServedTotal } from '../common/metrics.js';
import type { Admission } from './admission.js';
import type { ChunkStore } from './chunk-store.js';
import type { CloneStats } from './cloner.js';
import type { PushBuffers } from './push-buffers.js';
import type { ScrubStats } from './scrubber.js';

export interface ChunkserverHttpOptions {
  host: string;
  port: number;
  log: Logger;
  serverId: () => string;
  addr: string;
  master: string;
  registered: () => boolean;
  store: ChunkStore;
  admission: Admission;
  buffers: PushBuffers;
  capacity: () => Promise<number>;
  scrubStats: () => ScrubStats;
  cloneStats: () => CloneStats;
}

let current: ChunkserverHttpOptions | undefined;
let registered = false;

function registerChunkserverMetrics(): void {
  if (registered) return;
  registered = true;
  const o = () => current;
  gaugeFn('gfs_chunkserver_chunks', 'Chunks stored on this server', () => o()?.store.chunkCount ?? 0);
  gaugeFn('gfs_chunkserver_used_bytes', 'Bytes held in chunks', () => o()?.store.used ?? 0);
  gaugeFn('gfs_chunkserver_registered', '1 while registered with the master', () => (o()?.registered() ? 1 : 0));
  gaugeFn('gfs_chunkserver_in_flight', 'Requests being served (the load reported to the master)', () => o()?.admission.inFlight ?? 0);
  labelledGaugeFn('gfs_chunkserver_queue_depth', 'Disk work waiting for a slot, by pool', ['pool'], () => {
    const a = o()?.admission;
    if (!a) return [];
    return [
      [{ pool: 'client' }, a.queued],
      [{ pool: 'background' }, a.backgroundLoad.queued],
    ];
  });
  gaugeFn('gfs_chunkserver_background_active', 'Background disk operations running (clones, scrubbing)', () => o()?.admission.backgroundLoad.active ?? 0);
  gaugeFn('gfs_chunkserver_push_buffer_bytes', 'Bytes of pushed data waiting for their write', () => o()?.buffers.bytes ?? 0);
  gaugeFn('gfs_chunkserver_push_buffers', 'Pushed data buffers waiting for their write', () => o()?.buffers.count ?? 0);
  labelledGaugeFn('gfs_chunkserver_clones', 'Clones running and queued on this server', ['phase'], () => {
    const c = o()?.cloneStats();
    return c ? [[{ phase: 'active' }, c.active], [{ phase: 'queued' }, c.queued]] : [];
  });
  labelledCounterFn('gfs_chunkserver_clones_total', 'Clone requests, by result', ['result'], () => {
    const c = o()?.cloneStats();
    if (!c) return [];
    return [
      [{ result: 'succeeded' }, c.succeeded],
      [{ result: 'failed' }, c.failed],
      [{ result: 'already_present' }, c.alreadyPresent],
      [{ result: 'shed' }, c.shed],
    ];
  });
  counterFn('gfs_chunkserver_cloned_bytes_total', 'Bytes copied in by successful clones', () => o()?.cloneStats().bytes ?? 0);
  counterFn('gfs_chunkserver_scrubbed_bytes_total', 'Bytes verified by the scrubber', () => o()?.scrubStats().bytesVerified ?? 0);
  counterFn('gfs_chunkserver_scrub_corrupt_total', 'Chunks the scrubber found corrupt', () => o()?.scrubStats().corruptFound ?? 0);
  counterFn('gfs_chunkserver_scrub_passes_total', 'Scrubber passes completed', () => o()?.scrubStats().passes ?? 0);
  counterFn('gfs_chunkserver_write_behind_flushes_total', 'Background flushes of written chunk data to disk', () => o()?.store.writeBehindFlushes ?? 0);
}

async function status(o: ChunkserverHttpOptions) {
  const a = o.admission;
  return {
    serverId: o.serverId(),
    addr: o.addr,
    master: o.master,
    registered: o.registered(),
    nowMs: Date.now(),
    pid: process.pid,
    rssBytes: process.memoryUsage.rss(),
    chunks: o.store.chunkCount,
    usedBytes: o.store.used,
    capacityBytes: await o.capacity(),
    inFlight: a.inFlight,
    queued: a.queued,
    background: a.backgroundLoad,
    pushBuffers: { count: o.buffers.count, bytes: o.buffers.bytes },
    rpcsServed: rpcServedTotal(),
    scrub: o.scrubStats(),
    clone: o.cloneStats(),
  };
}

const PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>gfs chunkserver</title>
<style>
body { margin:0; font:15px/1.45 system-ui,sans-serif; background:#f6f7f9; color:#1d2330; }
@media (prefers-color-scheme: dark) { body { background:#0f1420; color:#e6e9ef; } .card { background:#182030 !important; border-color:#2a3446 !important; } }
main { max-width:900px; margin:0 auto; padding:1rem; }
h1 { font-size:1.15rem; } .muted { color:#667085; font-size:.85rem; }
.grid { display:grid; grid-template-columns:repeat(auto-fit,minmax(170px,1fr)); gap:.7rem; }
.card { background:#fff; border:1px solid #e4e7ec; border-radius:10px; padding:.6rem .8rem; }
.k { color:#667085; font-size:.78rem; text-transform:uppercase; } .v { font-size:1.3rem; font-weight:650; font-variant-numeric:tabular-nums; }
.bar { height:.5rem; background:#eaecf0; border-radius:4px; overflow:hidden; } .bar i { display:block; height:100%; background:#2e90fa; }
</style></head><body><main>
<h1>gfs chunkserver <span id="id" class="muted"></span></h1>
<div class="muted" id="sub">loading…</div><br>
<div class="grid" id="grid"></div>
<script>
"use strict";
const b = (n) => { const u = ["B","KiB","MiB","GiB","TiB"]; let i = 0; n = Number(n) || 0; while (n >= 1024 && i < 4) { n /= 1024; i++; } return (i ? n.toFixed(1) : n) + " " + u[i]; };
const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({ "&":"&amp;", "<":"&lt;", ">":"&gt;", '"':"&quot;" })[c]);
async function tick() {
  try {
    const s = await (await fetch("api/status", { cache: "no-store" })).json();
    document.getElementById("id").textContent = s.serverId + " · " + s.addr;
    document.getElementById("sub").textContent = (s.registered ? "registered with" : "NOT registered with") + " master " + s.master + " · updated " + new Date().toLocaleTimeString();
    const f = s.capacityBytes > 0 ? s.usedBytes / s.capacityBytes : 0;
    const cards = [
      ["chunks", s.chunks.toLocaleString("en-US")],
      ["used / capacity", b(s.usedBytes) + " / " + b(s.capacityBytes) + '<div class="bar"><i style="width:' + (f * 100).toFixed(1) + '%"></i></div>'],
      ["requests in flight", s.inFlight],
      ["queued (client / background)", s.queued + " / " + s.background.queued],
      ["push buffers", s.pushBuffers.count + " (" + b(s.pushBuffers.bytes) + ")"],
      ["clones active / done / failed", s.clone.active + " / " + s.clone.succeeded + " / " + s.clone.failed],
      ["scrubbed", b(s.scrub.bytesVerified) + " · " + s.scrub.corruptFound + " corrupt"],
      ["RPCs served", s.rpcsServed.toLocaleString("en-US")],
      ["memory (RSS)", b(s.rssBytes)],
    ];
    document.getElementById("grid").innerHTML = cards.map(([k, v]) => '<div class="card"><div class="k">' + esc(k) + '</div><div class="v">' + (String(v).includes("<div") ? v : esc(v)) + "</div></div>").join("");
  } catch (err) {
    document.getElementById("sub").textContent = "cannot reach the chunkserver: " + err.message;
  } finally { setTimeout(tick, 2000); }
}
tick();
</script></main></body></html>
`;

export async function startChunkserverHttp(o: ChunkserverHttpOptions): Promise<HttpHandle> {
  initProcessMetrics('chunkserver');
  registerChunkserverMetrics();
  current = o;
  const server = await startHttpServer(
    o.host,
    o.port,
    {
      '/': () => html(PAGE),
      '/index.html': () => html(PAGE),
      '/api/status': async () => json(await status(o)),
      ...commonRoutes(),
    },
    o.log,
  );
  return {
    ...server,
    async close() {
      if (current === o) current = undefined;
      await server.close();
    },
  };
}
