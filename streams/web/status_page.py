"""The status page every worker and connector serves at ``GET /``: one self-contained HTML
document (inline CSS and JS, nothing fetched from elsewhere) that polls ``./status`` every 2 s,
keeps the last 10 minutes of samples in the browser and draws them. It renders any process's
``/status`` (:mod:`streams.web.status`): totals are listed by name, whatever the kind.

The page itself holds no figures, so it needs no token; when ``/status`` answers 401 it asks
for one and sends it as a bearer token (kept in the tab's session storage)."""

from __future__ import annotations

from aiohttp import web

# Inline only: the CSP forbids loading anything but ./status, so a page that works here
# cannot depend on a CDN.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "connect-src 'self'; img-src data:; form-action 'none'; base-uri 'none'"
)

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Profile Streams status</title>
<style>
  :root { --fg: #1d2430; --muted: #6b7280; --line: #e5e7eb; --bg: #f8fafc; --card: #fff; }
  * { box-sizing: border-box; }
  [hidden] { display: none !important; }
  body { margin: 0; font: 14px/1.4 system-ui, sans-serif; color: var(--fg); background: var(--bg); }
  header { display: flex; flex-wrap: wrap; align-items: baseline; gap: 12px;
           padding: 12px 20px; background: var(--card); border-bottom: 1px solid var(--line); }
  h1 { font-size: 20px; margin: 0; }
  h2 { font-size: 14px; margin: 0 0 8px; color: var(--muted); font-weight: 600; }
  #kind { color: var(--muted); font-weight: 400; }
  .badge { padding: 2px 8px; border-radius: 10px; background: #e5e7eb; font-weight: 600; }
  .badge.running { background: #dcfce7; color: #166534; }
  .badge.restoring, .badge.starting { background: #e0f2fe; color: #075985; }
  .badge.retrying, .badge.stopping { background: #fef3c7; color: #92400e; }
  .badge.unreachable { background: #fee2e2; color: #991b1b; }
  #updated, .muted { color: var(--muted); }
  #error { color: #991b1b; }
  main { padding: 16px 20px; display: grid; gap: 16px;
         grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); }
  .card { background: var(--card); border: 1px solid var(--line); border-radius: 8px;
          padding: 12px 14px; }
  .wide { grid-column: 1 / -1; }
  .flow { display: flex; gap: 28px; }
  .flow div { font-size: 24px; font-weight: 600; }
  .flow span { display: block; font-size: 12px; color: var(--muted); font-weight: 400; }
  table { border-collapse: collapse; width: 100%; }
  th, td { text-align: left; padding: 3px 8px; border-bottom: 1px solid var(--line); }
  td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
  svg { width: 100%; height: 180px; display: block; }
  svg text { font-size: 11px; fill: var(--muted); }
  .legend { display: flex; flex-wrap: wrap; gap: 12px; font-size: 12px; margin-top: 4px; }
  .legend i { display: inline-block; width: 10px; height: 10px; margin-right: 4px; }
  form { display: flex; gap: 8px; align-items: center; }
</style>
</head>
<body>
<header>
  <h1><span id="kind">status</span> <span id="name">loading</span></h1>
  <span id="state" class="badge">loading</span>
  <span id="updated"></span>
  <span id="error"></span>
  <form id="auth" hidden>
    <label for="token">/status needs a token:</label>
    <input id="token" type="password" autocomplete="off">
    <button type="submit">use</button>
  </form>
</header>
<main>
  <section class="card wide">
    <div class="flow">
      <div id="flow-in">-<span>in per s</span></div>
      <div id="flow-out">-<span>out per s</span></div>
      <div id="flow-lag">-<span>total lag</span></div>
      <div id="flow-up">-<span>up for</span></div>
    </div>
  </section>
  <section class="card">
    <h2>Totals since start</h2>
    <table><thead><tr><th>figure</th><th class="num">total</th><th class="num">per s</th></tr>
    </thead><tbody id="totals"></tbody></table>
  </section>
  <section class="card">
    <h2>Dead letters by reason</h2>
    <table><thead><tr><th>reason</th><th class="num">letters</th></tr></thead>
    <tbody id="dlq"></tbody></table>
  </section>
  <section class="card">
    <h2>Rates per second, last 10 minutes</h2>
    <svg id="chart-rates" role="img" aria-label="rates"></svg>
    <div class="legend" id="legend-rates"></div>
  </section>
  <section class="card">
    <h2>Total lag, last 10 minutes</h2>
    <svg id="chart-lag" role="img" aria-label="total lag"></svg>
  </section>
  <section class="card wide">
    <h2>Partitions</h2>
    <table><thead><tr><th>topic</th><th class="num">partition</th><th>state</th>
      <th class="num">position</th><th class="num">end</th><th class="num">lag</th></tr></thead>
    <tbody id="partitions"></tbody></table>
  </section>
</main>
<script>
"use strict";
const POLL_MS = 2000;
const WINDOW_S = 600;
// What flows in and out, by kind; every other total is listed and charted by its name.
const FLOW = {worker: ["events_in", "upserts_out"], connector: ["records", "delivered"]};
const COLORS = ["#2563eb", "#16a34a", "#9333ea", "#ea580c", "#dc2626", "#0891b2", "#ca8a04"];
const SVG = "http://www.w3.org/2000/svg";
const history = [];  // {t, rates: {name: per s}, lag}
let previous = null;

const $ = (id) => document.getElementById(id);
const grouped = (n) => n.toLocaleString("en-US");
const rate = (v) => v === undefined ? "-" : grouped(Math.round(v * 10) / 10);

function cell(row, text, cls, value) {
  const td = row.insertCell();
  td.textContent = text;
  if (cls) td.className = cls;
  if (value !== undefined && value !== null) td.dataset.value = String(value);
  return td;
}

function fill(body, rows) {
  body.replaceChildren();
  for (const values of rows) {
    const row = body.insertRow();
    values(row);
  }
}

function duration(seconds) {
  const s = Math.max(Math.floor(seconds), 0);
  if (s < 60) return s + " s";
  if (s < 3600) return Math.floor(s / 60) + " min";
  if (s < 86400) return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
  return Math.floor(s / 86400) + " d " + Math.floor((s % 86400) / 3600) + " h";
}

function ratesBetween(a, b) {
  if (!a || a.started_at !== b.started_at || a.url !== b.url || b.now <= a.now) return null;
  const rates = {};
  for (const [name, total] of Object.entries(b.totals)) {
    if (name in a.totals) rates[name] = Math.max(total - a.totals[name], 0) / (b.now - a.now);
  }
  return rates;
}

function totalLag(doc) {
  let sum = null;
  for (const p of doc.partitions) if (p.lag !== null) sum = (sum || 0) + p.lag;
  return sum;
}

function render(doc, rates) {
  $("kind").textContent = doc.kind;
  $("name").textContent = doc.name;
  document.title = doc.kind + " " + doc.name + " - Profile Streams";
  $("state").textContent = doc.state;
  $("state").className = "badge " + doc.state;
  $("updated").textContent = "at " + new Date(doc.now * 1000).toLocaleTimeString();
  $("error").textContent = "";
  const [inName, outName] = FLOW[doc.kind] || [];
  const shown = rates || {};
  $("flow-in").firstChild.textContent = rate(shown[inName]);
  $("flow-out").firstChild.textContent = rate(shown[outName]);
  const lag = totalLag(doc);
  $("flow-lag").firstChild.textContent = lag === null ? "-" : grouped(lag);
  $("flow-up").firstChild.textContent = duration(doc.now - doc.started_at);
  fill($("totals"), Object.entries(doc.totals).map(([name, total]) => (row) => {
    row.id = "total-" + name;
    cell(row, name.replaceAll("_", " "));
    cell(row, grouped(total), "num total", total);
    cell(row, rate(shown[name]), "num rate", shown[name]);
  }));
  const reasons = Object.entries(doc.dlq_by_reason);
  fill($("dlq"), reasons.length ? reasons.map(([reason, count]) => (row) => {
    row.dataset.reason = reason;
    cell(row, reason);
    cell(row, grouped(count), "num", count);
  }) : [(row) => cell(row, "none", "muted")]);
  fill($("partitions"), doc.partitions.map((p) => (row) => {
    row.dataset.partition = p.topic + "/" + p.partition;
    cell(row, p.topic);
    cell(row, String(p.partition), "num");
    cell(row, p.state);
    for (const v of [p.position, p.end, p.lag]) cell(row, v === null ? "-" : grouped(v), "num", v);
  }));
  const names = Object.keys(doc.totals);
  const now = doc.now;
  chart($("chart-rates"), names.map((name, i) => ({
    name, color: COLORS[i % COLORS.length],
    points: history.filter((s) => name in s.rates).map((s) => [s.t, s.rates[name]]),
  })), now);
  legend($("legend-rates"), names);
  chart($("chart-lag"), [{name: "lag", color: COLORS[0],
    points: history.filter((s) => s.lag !== null).map((s) => [s.t, s.lag])}], now);
}

function legend(box, names) {
  box.replaceChildren();
  names.forEach((name, i) => {
    const item = document.createElement("span");
    const swatch = document.createElement("i");
    swatch.style.background = COLORS[i % COLORS.length];
    item.append(swatch, name.replaceAll("_", " "));
    box.append(item);
  });
}

function svg(name, attributes, text) {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

function chart(box, series, now) {
  const width = 600, height = 180, left = 48, bottom = 18, top = 8;
  box.setAttribute("viewBox", "0 0 " + width + " " + height);
  box.replaceChildren();
  let max = 0;
  for (const s of series) for (const [, v] of s.points) max = Math.max(max, v);
  max = max > 0 ? max * 1.1 : 1;
  const x = (t) => left + (width - left) * (1 - (now - t) / WINDOW_S);
  const y = (v) => top + (height - top - bottom) * (1 - v / max);
  box.append(svg("line", {x1: left, y1: y(0), x2: width, y2: y(0), stroke: "#9ca3af"}));
  box.append(svg("line", {x1: left, y1: top, x2: left, y2: y(0), stroke: "#9ca3af"}));
  box.append(svg("text", {x: 2, y: top + 10}, rate(max)));
  box.append(svg("text", {x: 2, y: y(0)}, "0"));
  box.append(svg("text", {x: left, y: height - 4}, "-10 min"));
  box.append(svg("text", {x: width - 24, y: height - 4}, "now"));
  for (const s of series) {
    if (!s.points.length) continue;
    const points = s.points.map(([t, v]) => x(t).toFixed(1) + "," + y(v).toFixed(1));
    if (points.length === 1) points.push(points[0]);
    box.append(svg("polyline", {points: points.join(" "), fill: "none", stroke: s.color,
      "stroke-width": 1.5, "data-series": s.name}));
  }
}

function headers() {
  const token = sessionStorage.getItem("streams-status-token");
  return token ? {Authorization: "Bearer " + token} : {};
}

async function poll() {
  try {
    const response = await fetch("./status", {headers: headers(), cache: "no-store"});
    if (response.status === 401) {
      $("auth").hidden = false;
      throw new Error("401: a token of STREAMS_API_TOKENS is needed");
    }
    if (!response.ok) throw new Error("HTTP " + response.status);
    const doc = await response.json();
    const rates = ratesBetween(previous, doc);
    if (!previous || doc.now !== previous.now) {
      history.push({t: doc.now, rates: rates || {}, lag: totalLag(doc)});
      while (history.length && history[0].t < doc.now - WINDOW_S) history.shift();
      previous = doc;
    }
    render(doc, rates || (history.length ? history[history.length - 1].rates : null));
  } catch (error) {
    $("state").textContent = "unreachable";
    $("state").className = "badge unreachable";
    $("error").textContent = "status unavailable: " + error.message;
  } finally {
    setTimeout(poll, POLL_MS);
  }
}

$("auth").addEventListener("submit", (event) => {
  event.preventDefault();
  sessionStorage.setItem("streams-status-token", $("token").value);
  $("auth").hidden = true;
});
poll();
</script>
</body>
</html>
"""

_BODY = PAGE.encode()


async def status_page(request: web.Request) -> web.Response:
    response = web.Response(body=_BODY, content_type="text/html", charset="utf-8")
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["Cache-Control"] = "no-cache"
    return response
