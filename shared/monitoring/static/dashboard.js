// The bankops dashboard: fetches GET /api/dashboard every few seconds and draws its charts as inline SVG.
// Hand-written, no libraries (the page works offline and under a same-origin-only CSP). Every chart
// <figure> gets data-points (how many points it drew) and data-state ("ready" or "empty"); an empty
// chart shows a "no data" line instead, so a person and a test see the same thing.
"use strict";

const NS = "http://www.w3.org/2000/svg";
const KEY_STORE = "bankops.functionKey";
const COLORS = {
  ok: "#3b82f6", client: "#f59e0b", server: "#dc2626", yes: "#16a34a", no: "#cbd5e1",
  p50: "#0ea5e9", p95: "#6366f1", p99: "#db2777", deploy: "#16a34a", rollback: "#ea580c", version: "#334155",
};
const state = { window: "1h", key: null, timer: null, data: null };

// ---- small helpers -------------------------------------------------------------------------------
function el(tag, attrs, parent, text) {
  const node = tag.startsWith("svg:") ? document.createElementNS(NS, tag.slice(4)) : document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value !== undefined && value !== null) node.setAttribute(name, String(value));
  }
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (parent) parent.appendChild(node);
  return node;
}
const $ = (id) => document.getElementById(id);
const pad = (n) => String(n).padStart(2, "0");
function clock(ms, withSeconds) {
  const d = new Date(ms);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}${withSeconds ? ":" + pad(d.getSeconds()) : ""}`;
}
function when(iso) {
  if (!iso) return "–";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const today = new Date();
  const day = d.toDateString() === today.toDateString() ? "today" : `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
  return `${day} ${clock(d.getTime(), true)}`;
}
const fmt = (v, digits = 0) => (v === null || v === undefined ? "–" : Number(v).toLocaleString(undefined, { maximumFractionDigits: digits, minimumFractionDigits: digits }));
const pct = (v, digits = 1) => (v === null || v === undefined ? "–" : `${fmt(v, digits)}%`);
const ms = (v) => (v === null || v === undefined ? "–" : v >= 100 ? `${fmt(v, 0)} ms` : `${fmt(v, 1)} ms`);
const metric = (v) => (v === null || v === undefined ? "–" : Number(v).toFixed(4));
function setTile(id, value, sub, level) {
  const tile = $(id);
  tile.querySelector(".value").textContent = value;
  tile.querySelector(".sub").textContent = sub || "";
  if (level) tile.dataset.level = level; else delete tile.dataset.level;
}
function legend(figId, items) {
  const list = document.querySelector(`.legend[data-for="${figId}"]`);
  list.replaceChildren();
  for (const [cls, label] of items) el("li", { class: cls }, list, label);
}
function niceTicks(top, integer, count = 4) {
  // round gridlines (1, 2 or 5 times a power of ten apart) from 0 to just above `top`; whole steps for counts
  const raw = top > 0 ? top / count : 0.25;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = Math.max(integer ? 1 : 0, [1, 2, 5, 10].map((f) => f * power).find((v) => v >= raw));
  const ticks = [];
  for (let v = 0; v < top + step * 0.999 || ticks.length < 2; v += step) ticks.push(Number(v.toPrecision(12)));
  return ticks;
}

// ---- the chart ----------------------------------------------------------------------------------
// spec: {t, stepMs, startMs, endMs, bars: [{name, color, values}], lines: [{name, color, values, width, dash}],
//        yMin, yMax, yTicks, yFormat, integer (counts), markers: [{atMs, kind, color, label, title}], empty, step (a step line)}
function drawChart(fig, spec) {
  fig.replaceChildren();
  const bars = spec.bars || [], lines = spec.lines || [], markers = (spec.markers || []).filter((m) => m.atMs >= spec.startMs && m.atMs <= spec.endMs);
  const n = spec.t.length;
  let points = markers.length, top = 0;
  for (let i = 0; i < n; i++) {
    const stack = bars.reduce((sum, b) => sum + (b.values[i] || 0), 0);
    if (stack > 0) points += 1;
    top = Math.max(top, stack);
  }
  for (const line of lines) for (const v of line.values) if (v !== null && v !== undefined) { points += 1; top = Math.max(top, v); }
  fig.dataset.points = String(points);
  if (!points) {
    fig.dataset.state = "empty";
    el("p", { class: "no-data" }, fig, spec.empty || "no data in this window");
    return;
  }
  fig.dataset.state = "ready";
  const width = Math.max(fig.clientWidth || 560, 240), height = Math.max(fig.clientHeight || 200, 120);
  const m = { l: 56, r: 12, t: 8, b: 22 };
  const w = width - m.l - m.r, h = height - m.t - m.b;
  const auto = niceTicks(top * 1.05, spec.integer);
  const yMax = spec.yMax !== undefined ? spec.yMax : auto[auto.length - 1];
  const yMin = spec.yMin || 0;
  const svg = el("svg:svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": fig.dataset.chart }, fig);
  const x = (ms) => m.l + ((ms - spec.startMs) / (spec.endMs - spec.startMs)) * w;
  const y = (v) => m.t + h - ((v - yMin) / (yMax - yMin)) * h;
  const axis = el("svg:g", { class: "axis" }, svg);
  const ticks = spec.yTicks || auto;
  for (const v of ticks) {
    el("svg:line", { class: "gridline", x1: m.l, x2: m.l + w, y1: y(v), y2: y(v) }, axis);
    el("svg:text", { x: m.l - 6, y: y(v) + 3.5, "text-anchor": "end" }, axis, (spec.yFormat || fmt)(v));
  }
  el("svg:line", { class: "baseline", x1: m.l, x2: m.l + w, y1: m.t + h, y2: m.t + h }, axis);
  const span = spec.endMs - spec.startMs, seconds = span <= 20 * 60 * 1000;
  const every = [60e3, 120e3, 300e3, 600e3, 900e3, 1800e3, 3600e3, 7200e3, 10800e3, 21600e3].find((s) => span / s <= 7) || 43200e3;
  for (let at = Math.ceil(spec.startMs / every) * every; at <= spec.endMs; at += every) {
    el("svg:line", { class: "gridline", x1: x(at), x2: x(at), y1: m.t, y2: m.t + h }, axis);
    el("svg:text", { x: x(at), y: m.t + h + 15, "text-anchor": "middle" }, axis, clock(at, seconds && every < 60e3));
  }
  const slot = (spec.stepMs / span) * w, barW = Math.max(1, slot * 0.78);
  const plot = el("svg:g", { class: "plot" }, svg);
  for (let i = 0; i < n; i++) {
    let base = 0;
    for (const bar of bars) {
      const v = bar.values[i] || 0;
      if (v <= 0) continue;
      const r = el("svg:rect", { x: x(spec.t[i]) + (slot - barW) / 2, width: barW, y: y(base + v), height: Math.max(0.5, y(base) - y(base + v)),
        fill: bar.color, "data-series": bar.name }, plot);
      el("svg:title", {}, r, `${clock(spec.t[i], true)} · ${bar.name}: ${fmt(v)}`);
      base += v;
    }
  }
  for (const line of lines) {
    let d = "", open = false;
    line.values.forEach((v, i) => {
      if (v === null || v === undefined) { open = false; return; }
      const px = x(spec.t[i] + spec.stepMs / 2), py = y(v);
      if (spec.step) d += `${open ? "L" : "M"}${x(spec.t[i]).toFixed(1)},${py.toFixed(1)}L${(x(spec.t[i]) + slot).toFixed(1)},${py.toFixed(1)}`;
      else d += `${open ? "L" : "M"}${px.toFixed(1)},${py.toFixed(1)}`;
      open = true;
    });
    el("svg:path", { d, fill: "none", stroke: line.color, "stroke-width": line.width || 2, "stroke-dasharray": line.dash,
      "stroke-linejoin": "round", "data-series": line.name }, plot);
    line.values.forEach((v, i) => {
      if (v === null || v === undefined) return;
      const dot = el("svg:circle", { cx: x(spec.t[i] + spec.stepMs / 2), cy: y(v), r: spec.step ? 0 : 2.2, fill: line.color, "data-series": line.name }, plot);
      el("svg:title", {}, dot, `${clock(spec.t[i], true)} · ${line.name}: ${(spec.yFormat || fmt)(v)}`);
    });
  }
  let row = 0, lastX = -Infinity;
  for (const mk of [...markers].sort((a, b) => a.atMs - b.atMs)) {
    const px = x(mk.atMs);
    row = px - lastX < 90 ? (row + 1) % 4 : 0;  // labels of close markers go on separate rows
    lastX = px;
    const g = el("svg:g", { class: "marker", "data-kind": mk.kind }, plot);
    el("svg:line", { x1: px, x2: px, y1: m.t, y2: m.t + h, stroke: mk.color, "stroke-width": 1.5, "stroke-dasharray": "4 3" }, g);
    el("svg:path", { d: `M${px - 5},${m.t} L${px + 5},${m.t} L${px},${m.t + 7} Z`, fill: mk.color }, g);
    const left = px > m.l + w - 90;
    el("svg:text", { x: left ? px - 8 : px + 8, y: m.t + 11 + row * 13, fill: mk.color, "font-size": 11, "font-weight": 600,
      "text-anchor": left ? "end" : "start" }, g, mk.label);
    el("svg:title", {}, g, mk.title || mk.label);
  }
}

// ---- the panels ---------------------------------------------------------------------------------
function frame(d) {
  return { t: d.series.t, stepMs: d.bucket_s * 1000, startMs: d.start_ms, endMs: d.end_ms };
}

function renderTiles(d) {
  const s = d.summary, perMin = s.requests / (d.window_s / 60);
  setTile("tile-requests", fmt(s.requests), `${fmt(perMin, 2)} / min · ${fmt(s.score_requests)} to /score`);
  const level = s.failed_pct === null ? null : s.failed_pct >= 5 ? "bad" : s.failed_pct > 0 ? "warn" : "good";
  const server = Object.entries(s.by_status).filter(([code]) => Number(code) >= 500).reduce((a, [, v]) => a + v, 0);
  setTile("tile-failed", fmt(s.failed), s.failed_pct === null ? "no requests" : `${pct(s.failed_pct, 2)} · ${fmt(s.failed - server)} 4xx, ${fmt(server)} 5xx`, level);
  setTile("tile-latency", ms(s.p95_ms), s.p50_ms === null ? "no /score requests" : `p50 ${ms(s.p50_ms)} · p99 ${ms(s.p99_ms)}`);
  const mix = d.prediction_mix;
  setTile("tile-records", fmt(s.records), mix.yes_share === null ? "" : `${pct(100 * mix.yes_share)} predicted yes`);
  const avail = d.availability || {};
  for (const [id, key] of [["tile-availability-hour", "last_hour"], ["tile-availability-day", "last_day"]]) {
    const a = avail[key] || {};
    const v = a.availability_pct;
    setTile(id, pct(v, 2), a.probes ? `${fmt(a.up)} of ${fmt(a.probes)} probes up` : "no probes yet",
      v === null || v === undefined ? null : v >= 99.9 ? "good" : v >= 99 ? "warn" : "bad");
  }
  const firing = (d.alerts && d.alerts.firing) || [];
  setTile("tile-alerts", d.alerts ? fmt(firing.length) : "–", d.alerts ? firing.map((a) => a.rule).join(", ") || "all clear" : "alerts not configured",
    d.alerts ? (firing.length ? "bad" : "good") : null);
}

function renderMeta(d) {
  const meta = $("meta");
  meta.replaceChildren();
  const item = (label, value) => { const s = el("span", {}, meta, `${label} `); el("b", {}, s, value); };
  item("serving", d.serving_version ? `v${d.serving_version}` : "nothing");
  item("champion", d.champion ? `v${d.champion}${d.champion_provisional ? " (provisional: quick first model)" : ""}` : "none yet");
  item("next retrain", d.next_retrain ? when(d.next_retrain) : "–");
  item("interval", d.bucket_s >= 60 ? `${d.bucket_s / 60} min` : `${d.bucket_s} s`);
}

function renderRequests(d) {
  const s = d.series;
  drawChart($("chart-requests"), { ...frame(d), integer: true, empty: "no requests in this window",
    bars: [{ name: "succeeded", color: COLORS.ok, values: s.requests_ok }, { name: "4xx", color: COLORS.client, values: s.client_errors },
      { name: "5xx", color: COLORS.server, values: s.server_errors }] });
  const sum = (a) => a.reduce((x, v) => x + v, 0);
  legend("chart-requests", [["ok", `succeeded ${fmt(sum(s.requests_ok))}`], ["client", `client errors (4xx) ${fmt(sum(s.client_errors))}`],
    ["server", `server errors (5xx) ${fmt(sum(s.server_errors))}`]]);
}

function renderLatency(d) {
  const s = d.series;
  drawChart($("chart-latency"), { ...frame(d), empty: "no /score requests in this window",
    yFormat: (v) => `${fmt(v, v > 0 && v < 10 && !Number.isInteger(v) ? 1 : 0)} ms`,
    lines: [{ name: "p50", color: COLORS.p50, values: s.p50_ms }, { name: "p95", color: COLORS.p95, values: s.p95_ms, width: 3 },
      { name: "p99", color: COLORS.p99, values: s.p99_ms, width: 1.5, dash: "5 3" }] });  // p99 dashed: p95 shows through where equal
  legend("chart-latency", [["p50", `p50 ${ms(d.summary.p50_ms)}`], ["p95", `p95 ${ms(d.summary.p95_ms)}`], ["p99", `p99 ${ms(d.summary.p99_ms)}`]]);
}

function renderMix(d) {
  const s = d.series, mix = d.prediction_mix;
  drawChart($("chart-mix"), { ...frame(d), integer: true, empty: "no records scored in this window",
    bars: [{ name: "yes", color: COLORS.yes, values: s.yes }, { name: "no", color: COLORS.no, values: s.no }] });
  const items = [["yes", `yes ${fmt(mix.yes)}`], ["no", `no ${fmt(mix.no)}`]];
  let line = "records predicted “yes” and “no”";
  if (mix.yes_share !== null) line = `${pct(100 * mix.yes_share)} of ${fmt(mix.yes + mix.no)} records predicted “yes”`;
  if (mix.holdout_range) {
    const [lo, hi] = mix.holdout_range;
    line += ` · v${mix.holdout_version} predicted ${pct(100 * lo)}–${pct(100 * hi)} on its holdout`;
  }
  $("mix-summary").textContent = line;
  legend("chart-mix", items);
}

function renderAvailability(d) {
  drawChart($("chart-availability"), { ...frame(d), empty: "no probes in this window", yMax: 100, yMin: 0, yTicks: [0, 25, 50, 75, 100],
    yFormat: (v) => `${fmt(v)}%`, lines: [{ name: "available", color: COLORS.ok, values: d.series.availability_pct }] });
  const a = (d.availability || {}).last_hour || {};
  legend("chart-availability", [["avail", `available (probes per interval) · last hour ${pct(a.availability_pct, 2)}`]]);
}

function renderVersions(d) {
  const versions = d.series.served_version.map((v) => (v === null ? null : Number(v)));
  const known = versions.filter((v) => v !== null).concat(d.events.map((e) => Number(e.model_version)).filter((v) => !Number.isNaN(v) && v > 0));
  const lo = known.length ? Math.min(...known) : 1, hi = known.length ? Math.max(...known) : 1;
  const ticks = [];
  for (let v = lo; v <= hi; v++) ticks.push(v);
  const markers = d.events.filter((e) => e.at_ms).map((e) => ({ atMs: e.at_ms, kind: e.kind, color: e.kind === "rollback" ? COLORS.rollback : COLORS.deploy,
    label: `${e.kind === "rollback" ? "rollback" : "deploy"}${e.model_version ? " v" + e.model_version : ""}${e.ok ? "" : " failed"}`,
    title: `${when(e.at)} · ${e.kind} ${e.model_version ? "v" + e.model_version : ""} · ${e.reason || e.error || ""}` }));
  drawChart($("chart-versions"), { ...frame(d), step: true, empty: "no version answered /score and nothing was deployed in this window",
    yMin: lo - 0.6, yMax: hi + 0.6, yTicks: ticks, yFormat: (v) => `v${v}`,
    lines: [{ name: "served version", color: COLORS.version, values: versions }], markers });
  legend("chart-versions", [["version", "version that answered /score"], ["deploy", "deploy"], ["rollback", "rollback"]]);

  const list = $("events");
  list.replaceChildren();
  if (!d.events.length) el("li", { class: "empty" }, list, "no deploys or rollbacks yet");
  for (const e of d.events.slice(0, 8)) {
    const li = el("li", { "data-kind": e.kind }, list);
    el("span", { class: "when" }, li, when(e.at));
    el("span", { class: `pill ${e.ok ? e.kind : "failed"}` }, li, `${e.kind}${e.ok ? "" : " failed"}`);
    el("b", {}, li, e.model_version ? `v${e.model_version}` : "");
    el("span", { class: "reason", title: e.reason || e.error || "" }, li,
      e.failed_version ? `v${e.failed_version} failed its smoke test` : e.error || e.reason);
  }
  const body = $("versions").querySelector("tbody");
  body.replaceChildren();
  for (const v of d.versions) {
    const tr = el("tr", {}, body);
    el("td", {}, tr, `v${v.version}`);
    el("td", {}, tr, when(v.created_at));
    const aliases = el("td", {}, tr);
    for (const a of v.aliases) el("span", { class: `pill ${a === "champion" ? "deploy" : ""}` }, aliases, a);
    if (v.provisional) el("span", { class: "pill queued", title: "a quick first model: the full-budget AutoML replaces it" }, aliases, "provisional");
    el("td", {}, tr, v.dataset || "–");
    el("td", { class: "num" }, tr, metric(v.AUC_weighted));
  }
  if (!d.versions.length) el("td", { colspan: 5 }, el("tr", { class: "no-rows" }, body), "no registered versions yet");
}

function renderRuns(d) {
  const table = $("runs"), body = table.querySelector("tbody");
  body.replaceChildren();
  for (const r of d.runs) {
    const tr = el("tr", { "data-run": r.job_id || r.run_id || "" }, body);
    el("td", {}, tr, when(r.started));
    el("span", { class: `pill ${r.status}` }, el("td", {}, tr), r.status);
    el("td", { title: r.reason }, tr, r.reason.length > 32 ? r.reason.slice(0, 31) + "…" : r.reason);
    el("td", {}, tr, r.model_version ? `v${r.model_version}` : "–");
    el("td", {}, tr, r.dataset || "–");
    for (const k of ["AUC_weighted", "accuracy", "recall_yes", "precision_yes", "cv_score"]) el("td", { class: "num" }, tr, metric(r.metrics[k]));
    const gate = el("td", { class: "gate" }, tr);
    if (r.gate) {
      el("span", { class: `pill ${r.gate.outcome}` }, gate, String(r.gate.outcome).replace("_", " "));
      gate.append(` ${r.gate.reason || ""}`);
    } else {
      gate.textContent = r.error || "–";
    }
  }
  table.dataset.rows = String(d.runs.length);
  if (!d.runs.length) el("td", { colspan: 11 }, el("tr", { class: "no-rows" }, body), "no pipeline runs yet");
}

// x spans the points' times with a margin (a single point gets an hour either side)
function trendFrame(times) {
  const lo = Math.min(...times), hi = Math.max(...times), pad = Math.max((hi - lo) * 0.05, 3600e3 * (hi === lo ? 1 : 0), 1000);
  return { t: times, stepMs: 0, startMs: lo - pad, endMs: hi + pad };
}

const TREND_COLORS = ["#2563eb", "#16a34a", "#db2777", "#f59e0b", "#7c3aed", "#0891b2", "#64748b", "#ea580c"];

function renderMetricTrends(d) {
  const trends = (d.trends && d.trends.metrics) || [];
  const byVersion = new Map();
  for (const tr of trends) for (const p of tr.points) if (p.at_ms) byVersion.set(p.version, p.at_ms);
  const order = [...byVersion.entries()].sort((a, b) => a[1] - b[1]);
  const fig = $("chart-metric-trends");
  if (!order.length) { drawChart(fig, { t: [], stepMs: 0, startMs: 0, endMs: 1, empty: "no registered versions with holdout metrics yet" }); legend("chart-metric-trends", []); return; }
  const lines = [], items = [];
  trends.forEach((tr, i) => {
    const color = TREND_COLORS[i % TREND_COLORS.length], at = new Map(tr.points.map((p) => [p.version, p.value]));
    const values = order.map(([v]) => (at.has(v) ? at.get(v) : null));
    if (values.some((v) => v !== null)) lines.push({ name: tr.metric, color, values });
    for (const [bound, kind] of [[tr.low, "floor"], [tr.high, "ceiling"]]) {
      if (bound !== null && bound !== undefined) lines.push({ name: `${tr.metric} ${kind}`, color, values: order.map(() => bound), width: 1, dash: "5 4" });
    }
    items.push([tr.metric, tr.metric + (tr.low !== null ? ` ≥ ${tr.low}` : "") + (tr.high !== null ? ` ≤ ${tr.high}` : "")]);
  });
  const spec = { ...trendFrame(order.map(([, ms]) => ms)), lines, yFormat: (v) => v.toFixed(2), markers: order.map(([v, ms]) => ({ atMs: ms, kind: "version", color: COLORS.version, label: `v${v}` })) };
  drawChart(fig, spec);
  fig.dataset.versions = String(order.length);
  legendColors("chart-metric-trends", trends.map((tr, i) => [TREND_COLORS[i % TREND_COLORS.length], items[i][1]]));
}

function renderRunTrend(d) {
  const runs = ((d.trends && d.trends.runs) || []).filter((r) => r.at_ms);
  const fig = $("chart-run-trend");
  if (!runs.length) { drawChart(fig, { t: [], stepMs: 0, startMs: 0, endMs: 1, empty: "no pipeline runs yet" }); return; }
  const markers = runs.map((r) => ({ atMs: r.at_ms, kind: r.state, color: r.state === "failed" ? COLORS.server : COLORS.version,
    label: r.state === "failed" ? "failed" : r.model_version ? `v${r.model_version}` : r.state,
    title: `${r.state}${r.duration_s !== null ? ` in ${Math.round(r.duration_s)} s` : ""}${r.trials !== null ? `, ${r.trials} trials` : ""}${r.error ? ": " + r.error : ""}` }));
  drawChart(fig, { ...trendFrame(runs.map((r) => r.at_ms)), markers, lines: [
    { name: "duration (s)", color: COLORS.p95, values: runs.map((r) => r.duration_s) },
    { name: "trials", color: COLORS.yes, values: runs.map((r) => r.trials) }] });
  fig.dataset.runs = String(runs.length);
  fig.dataset.failed = String(runs.filter((r) => r.state === "failed").length);
  legendColors("chart-run-trend", [[COLORS.p95, "duration, seconds"], [COLORS.yes, "AutoML trials"], [COLORS.version, "a run (its version)"], [COLORS.server, "failed run"]]);
}

function legendColors(figId, items) {
  const list = document.querySelector(`.legend[data-for="${figId}"]`);
  list.replaceChildren();
  // the swatch colour through the CSSOM: a style attribute would break the page's Content-Security-Policy
  for (const [color, label] of items) el("li", {}, list, label).style.setProperty("--swatch", color);
}

function renderAlerts(d) {
  const list = $("alerts");
  list.replaceChildren();
  if (!d.alerts) { el("li", { class: "empty" }, list, "alerts are not part of this host's status"); return; }
  const firing = d.alerts.firing || [], recent = d.alerts.recent || [];
  const id = (e) => `${e.rule} ${e.state} ${e.timestamp}`;
  const firingIds = new Set(firing.map(id));
  const shown = firing.concat(recent.filter((e) => !firingIds.has(id(e)))).slice(0, 8);
  if (!shown.length) {
    const checked = d.alerts.last_check ? ` (last check ${when(d.alerts.last_check.timestamp)})` : "";
    el("li", { class: "empty" }, list, `no alerts${checked}`);
  }
  for (const a of shown) {
    const li = el("li", {}, list);
    el("span", { class: "when" }, li, when(a.timestamp));
    el("span", { class: `pill ${a.state}` }, li, `${a.rule} ${a.state}`);
    el("span", { class: "message" }, li, a.message || "");
  }
}

function render(d) {
  state.data = d;
  renderMeta(d);
  renderTiles(d);
  for (const draw of [renderRequests, renderLatency, renderMix, renderAvailability, renderVersions, renderRuns, renderMetricTrends, renderRunTrend, renderAlerts]) {
    try { draw(d); } catch (err) { console.error(err); }
  }
  const problem = $("problem");
  problem.hidden = !(d.problems && d.problems.length);
  problem.textContent = (d.problems || []).join(" · ");
  document.body.dataset.rendered = String(Number(document.body.dataset.rendered || 0) + 1);
}

// ---- data and refresh ---------------------------------------------------------------------------
async function refresh() {
  clearTimeout(state.timer);
  const updated = $("updated");
  if (!state.key) { showKeyForm(); return; }
  try {
    const answer = await fetch(`/api/dashboard?window=${encodeURIComponent(state.window)}`, { headers: { "x-functions-key": state.key }, cache: "no-store" });
    if (answer.status === 401) { sessionStorage.removeItem(KEY_STORE); state.key = null; showKeyForm("that key was not accepted"); return; }
    const body = await answer.json();
    if (!answer.ok) throw new Error(body.error || `HTTP ${answer.status}`);
    $("key-form").hidden = true;
    render(body);
    updated.dataset.state = "ok";
    updated.textContent = `updated ${clock(Date.now(), true)}`;
  } catch (err) {
    updated.dataset.state = "error";
    updated.textContent = `update failed: ${err.message}`;
  }
  state.timer = setTimeout(refresh, Number(document.body.dataset.refreshS || 5) * 1000);
}

function showKeyForm(message) {
  const form = $("key-form");
  form.hidden = false;
  $("updated").dataset.state = "error";
  $("updated").textContent = message || "needs the function key";
}

function start() {
  const params = new URLSearchParams(location.search);
  const code = params.get("code");
  if (code) {
    sessionStorage.setItem(KEY_STORE, code);
    params.delete("code");  // out of the address bar and the history entry
    history.replaceState(null, "", location.pathname + (params.toString() ? `?${params}` : ""));
  }
  state.key = sessionStorage.getItem(KEY_STORE);
  state.window = params.get("window") || "1h";
  for (const button of document.querySelectorAll("#windows button")) {
    button.setAttribute("aria-pressed", String(button.dataset.window === state.window));
    button.addEventListener("click", () => {
      state.window = button.dataset.window;
      for (const b of document.querySelectorAll("#windows button")) b.setAttribute("aria-pressed", String(b === button));
      const p = new URLSearchParams(location.search);
      p.set("window", state.window);
      history.replaceState(null, "", `${location.pathname}?${p}`);
      refresh();
    });
  }
  $("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    state.key = $("key-input").value.trim();
    sessionStorage.setItem(KEY_STORE, state.key);
    refresh();
  });
  let resizing = null;
  window.addEventListener("resize", () => { clearTimeout(resizing); resizing = setTimeout(() => state.data && render(state.data), 150); });
  refresh();
}

document.addEventListener("DOMContentLoaded", start);
