// The master's status page: one self-contained HTML document (no build step, no external
// assets) that fetches /api/status every 2 s and redraws. Phones get stacked cards, desktops a
// table. Element ids and data-* attributes are stable: the browser test reads them.
export const MASTER_STATUS_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>gfs master</title>
<style>
:root { --bg:#f6f7f9; --card:#fff; --fg:#1d2330; --muted:#667085; --line:#e4e7ec; --ok:#12b76a; --warn:#f79009; --bad:#f04438; --bar:#2e90fa; --barbg:#eaecf0; }
@media (prefers-color-scheme: dark) { :root { --bg:#0f1420; --card:#182030; --fg:#e6e9ef; --muted:#98a2b3; --line:#2a3446; --barbg:#2a3446; } }
* { box-sizing: border-box; }
body { margin:0; font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif; background:var(--bg); color:var(--fg); }
header { display:flex; flex-wrap:wrap; align-items:center; gap:.5rem 1rem; padding:.9rem 1.2rem; background:var(--card); border-bottom:1px solid var(--line); }
header h1 { font-size:1.15rem; margin:0; }
header .addr { color:var(--muted); font-family:ui-monospace,monospace; font-size:.9rem; }
header .right { margin-left:auto; color:var(--muted); font-size:.85rem; }
main { max-width:1200px; margin:0 auto; padding:1rem; }
.badge { display:inline-block; padding:.1rem .55rem; border-radius:999px; font-size:.8rem; font-weight:600; color:#fff; }
.badge.ok, .pill.alive { background:var(--ok); } .badge.warn, .pill.suspect { background:var(--warn); } .badge.bad, .pill.dead { background:var(--bad); }
.cards { display:grid; grid-template-columns:repeat(auto-fit,minmax(128px,1fr)); gap:.75rem; margin-bottom:1rem; }
.card { background:var(--card); border:1px solid var(--line); border-radius:10px; padding:.7rem .9rem; }
.card .k { color:var(--muted); font-size:.8rem; text-transform:uppercase; letter-spacing:.03em; }
.card .v { font-size:1.5rem; font-weight:650; font-variant-numeric:tabular-nums; }
.card .s { color:var(--muted); font-size:.8rem; }
.card.alert .v { color:var(--bad); } .card.attn .v { color:var(--warn); }
section { background:var(--card); border:1px solid var(--line); border-radius:10px; padding:.8rem 1rem; margin-bottom:1rem; }
section h2 { font-size:1rem; margin:0 0 .6rem; }
table { width:100%; border-collapse:collapse; font-variant-numeric:tabular-nums; }
th, td { text-align:left; padding:.45rem .5rem; border-top:1px solid var(--line); vertical-align:middle; }
th { color:var(--muted); font-weight:500; font-size:.8rem; border-top:0; }
td.num { text-align:right; } th.num { text-align:right; }
.mono { font-family:ui-monospace,monospace; font-size:.88rem; }
.pill { display:inline-block; min-width:4.5rem; text-align:center; padding:.05rem .5rem; border-radius:999px; color:#fff; font-size:.8rem; font-weight:600; }
.bar { position:relative; height:.55rem; min-width:90px; background:var(--barbg); border-radius:4px; overflow:hidden; }
.bar > i { position:absolute; inset:0 auto 0 0; background:var(--bar); border-radius:4px; }
tr[data-state="dead"] { opacity:.6; }
.bar.hi > i { background:var(--warn); } .bar.full > i { background:var(--bad); }
.small { color:var(--muted); font-size:.8rem; }
ul.events { list-style:none; margin:0; padding:0; }
ul.events li { display:flex; flex-wrap:wrap; gap:.2rem .7rem; padding:.35rem 0; border-top:1px solid var(--line); }
ul.events li:first-child { border-top:0; }
.kv { display:grid; grid-template-columns:repeat(auto-fit,minmax(180px,1fr)); gap:.3rem 1rem; }
.kv div span { color:var(--muted); }
#error { display:none; background:var(--bad); color:#fff; padding:.5rem 1rem; border-radius:8px; margin-bottom:1rem; }
@media (max-width: 700px) {
  main { padding:.6rem; }
  table.servers thead { display:none; }
  table.servers tr { display:grid; grid-template-columns:1fr auto; gap:.15rem .5rem; padding:.55rem 0; border-top:1px solid var(--line); }
  table.servers td { border:0; padding:0; }
  table.servers td.num { text-align:left; }
  table.servers td[data-label]::before { content:attr(data-label) ": "; color:var(--muted); font-size:.8rem; }
  table.servers td.usage { grid-column:1 / -1; }
  .card .v { font-size:1.25rem; }
}
</style>
</head>
<body>
<header>
  <h1>gfs</h1><span id="health" class="badge ok">…</span>
  <span class="addr">master <span id="master-addr">…</span></span>
  <span class="right">updated <span id="updated">never</span> · refreshes every 2 s</span>
</header>
<main>
  <div id="error"></div>
  <div class="cards">
    <div class="card"><div class="k">Chunkservers</div><div class="v" id="servers-alive">–</div><div class="s" id="servers-detail">&nbsp;</div></div>
    <div class="card"><div class="k">Capacity used</div><div class="v" id="used-pct">–</div><div class="bar" id="used-bar"><i style="width:0"></i></div><div class="s" id="used-detail">&nbsp;</div></div>
    <div class="card"><div class="k">Files</div><div class="v" id="files">–</div><div class="s" id="dirs">&nbsp;</div></div>
    <div class="card"><div class="k">Chunks</div><div class="v" id="chunks">–</div><div class="s" id="chunk-size">&nbsp;</div></div>
    <div class="card" id="card-under"><div class="k">Under-replicated</div><div class="v" id="under-replicated">–</div><div class="s">below their goal</div></div>
    <div class="card" id="card-missing"><div class="k">Missing</div><div class="v" id="missing">–</div><div class="s">no live replica</div></div>
    <div class="card" id="card-backlog"><div class="k">Repair backlog</div><div class="v" id="repair-backlog">–</div><div class="s" id="repair-detail">&nbsp;</div></div>
    <div class="card"><div class="k">Ops / second</div><div class="v" id="ops">–</div><div class="s" id="ops-total">&nbsp;</div></div>
  </div>
  <section>
    <h2>Chunkservers</h2>
    <table class="servers">
      <thead><tr><th>Server</th><th>State</th><th>Used / capacity</th><th class="num">Load</th><th class="num">Chunks</th><th class="num">Last heartbeat</th></tr></thead>
      <tbody id="servers"><tr><td colspan="6" class="small">loading…</td></tr></tbody>
    </table>
  </section>
  <section>
    <h2>Recent events</h2>
    <ul class="events" id="events"><li class="small">none yet</li></ul>
  </section>
  <section>
    <h2>Repair and master</h2>
    <div class="kv" id="repair-kv"></div>
  </section>
</main>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
function bytes(n) {
  const u = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
  let i = 0; n = Number(n) || 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return (i === 0 ? n : n.toFixed(n >= 100 ? 0 : 1)) + " " + u[i];
}
const num = (n) => Number(n || 0).toLocaleString("en-US");
function ago(ms, now) {
  const s = Math.max(0, (now - Number(ms)) / 1000);
  if (!ms) return "–";
  if (s < 60) return s.toFixed(1) + " s ago";
  if (s < 3600) return Math.floor(s / 60) + " min ago";
  if (s < 86400) return Math.floor(s / 3600) + " h ago";
  return Math.floor(s / 86400) + " d ago";
}
function bar(used, cap) {
  const f = cap > 0 ? Math.min(1, used / cap) : 0;
  const cls = f >= 0.95 ? "bar full" : f >= 0.8 ? "bar hi" : "bar";
  return '<div class="' + cls + '" title="' + (f * 100).toFixed(1) + '%"><i style="width:' + (f * 100).toFixed(1) + '%"></i></div>';
}
function eventText(e) {
  if (e.kind === "registered") return "registered";
  if (e.kind === "address") return "address " + esc(e.from) + " → " + esc(e.to);
  return esc(e.from) + " → <b>" + esc(e.to) + "</b>";
}
function render(s) {
  const now = Number(s.nowMs) || Date.now();
  $("master-addr").textContent = s.master;
  const st = s.serverStates;
  const risk = s.missing > 0 ? "bad" : (s.underReplicated > 0 || st.suspect > 0 || st.dead > 0) ? "warn" : "ok";
  const h = $("health");
  h.className = "badge " + risk;
  h.textContent = risk === "ok" ? "healthy" : risk === "warn" ? "degraded" : "data at risk";
  $("servers-alive").textContent = st.alive + " alive";
  $("servers-detail").textContent = st.suspect + " suspect · " + st.dead + " dead";
  const pct = s.capacityBytes > 0 ? (100 * s.usedBytes) / s.capacityBytes : 0;
  $("used-pct").textContent = pct.toFixed(1) + " %";
  $("used-bar").outerHTML = bar(s.usedBytes, s.capacityBytes).replace("<div ", '<div id="used-bar" ');
  $("used-detail").textContent = bytes(s.usedBytes) + " of " + bytes(s.capacityBytes) + " raw";
  $("files").textContent = num(s.files);
  $("dirs").textContent = num(s.directories) + (s.directories === 1 ? " directory" : " directories");
  $("chunks").textContent = num(s.chunks);
  $("chunk-size").textContent = bytes(s.chunkSize) + " chunks · goal " + s.config.replication;
  $("under-replicated").textContent = num(s.underReplicated);
  $("missing").textContent = num(s.missing);
  $("repair-backlog").textContent = num(s.repairBacklog);
  $("repair-detail").textContent = s.repair.inFlight + " clone(s) in flight";
  $("card-under").className = "card" + (s.underReplicated > 0 ? " attn" : "");
  $("card-missing").className = "card" + (s.missing > 0 ? " alert" : "");
  $("card-backlog").className = "card" + (s.repairBacklog > 0 ? " attn" : "");
  $("ops").textContent = Number(s.opsPerSec).toFixed(1);
  $("ops-total").textContent = num(s.opsTotal) + " client ops since start";

  const rows = s.servers.slice().sort((a, b) => a.addr.localeCompare(b.addr)).map((v) =>
    '<tr data-server="' + esc(v.serverId) + '" data-addr="' + esc(v.addr) + '" data-state="' + esc(v.state) + '">' +
    '<td><div class="mono">' + esc(v.addr) + '</div><div class="small">' + esc(v.serverId) + "</div></td>" +
    '<td data-label="state"><span class="pill ' + esc(v.state) + '">' + esc(v.state) + "</span></td>" +
    '<td class="usage">' + bar(v.used, v.capacity) + '<div class="small">' + bytes(v.used) + " / " + bytes(v.capacity) + "</div></td>" +
    '<td class="num" data-label="load">' + num(v.load) + "</td>" +
    '<td class="num" data-label="chunks">' + num(v.chunks) + "</td>" +
    '<td class="num small" data-label="heartbeat">' + ago(v.lastHeartbeatMs, now) + "</td></tr>");
  $("servers").innerHTML = rows.length ? rows.join("") : '<tr><td colspan="6" class="small">no chunkserver has registered</td></tr>';

  const ev = s.recentEvents.slice(-25).reverse();
  $("events").innerHTML = ev.length ? ev.map((e) =>
    '<li data-kind="' + esc(e.kind) + '" data-server="' + esc(e.serverId) + '"><span class="small">' + new Date(Number(e.timeMs)).toLocaleTimeString() +
    '</span><span class="mono">' + esc(e.addr) + '</span><span>' + eventText(e) + "</span></li>").join("") : '<li class="small">none yet</li>';

  const r = s.repair, o = s.oplog || {};
  const kv = [
    ["clones in flight", r.inFlight + " / " + r.maxClones],
    ["queued for repair", num(r.queued)],
    ["clones done / failed", num(r.clonesSucceeded) + " / " + num(r.clonesFailed)],
    ["bytes re-replicated", bytes(r.bytesCloned)],
    ["clone bandwidth", bytes(r.cloneBytesPerSec) + "/s each"],
    ["rebalancing moves", num(r.rebalanceMoves)],
    ["stale / extra deleted", num(r.staleDeleted) + " / " + num(r.overReplicatedDeleted)],
    ["corrupt replicas reported", num(r.corruptReported)],
    ["heartbeat · suspect · dead", (s.config.heartbeatMs / 1000) + " s · " + (s.config.suspectAfterMs / 1000) + " s · " + (s.config.deadAfterMs / 1000) + " s"],
    ["oplog records / fsyncs", o.records === undefined ? "in-memory master" : num(o.records) + " / " + num(o.syncs)],
    ["master up since", new Date(Number(s.startedMs)).toLocaleString()],
    ["master memory (RSS)", bytes(s.rssBytes)],
  ];
  $("repair-kv").innerHTML = kv.map(([k, v]) => "<div><span>" + esc(k) + ":</span> " + esc(v) + "</div>").join("");
  $("updated").textContent = new Date().toLocaleTimeString();
  $("error").style.display = "none";
  document.body.dataset.loaded = "1";
}
async function refresh() {
  try {
    const res = await fetch("api/status", { cache: "no-store" });
    if (!res.ok) throw new Error("HTTP " + res.status);
    render(await res.json());
  } catch (err) {
    const e = $("error");
    e.textContent = "cannot reach the master: " + err.message + " (retrying)";
    e.style.display = "block";
  } finally {
    setTimeout(refresh, 2000);
  }
}
refresh();
</script>
</body>
</html>
`;
