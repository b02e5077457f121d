/* app.js: the operator page's code (see index.html). */
"use strict";
const POLL_MS = 5000;
const PALETTE = ["#2457c5", "#d97706", "#0f9d8a", "#c0392b", "#7c3aed",
                 "#4d7c0f", "#db2777", "#0369a1", "#a16207", "#475569"];
const STATE_ORDER = { silent: 0, behind: 1, never: 2, ok: 3, disabled: 4 };
const $ = (sel) => document.querySelector(sel);
let lastStatus = null;             // last /api/status
let lastHistory = null;            // last /api/history
let sort = { key: "code", dir: "asc" };

async function getJSON(path) {
  const r = await fetch(path, { cache: "no-store" });
  if (!r.ok) throw new Error(path + ": " + r.status + " " + (await r.text()).trim());
  return r.json();
}

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}

function num(v) { return v === null || v === undefined ? "-" : Number(v).toLocaleString("en-US"); }

function duration(s) {
  if (s === null || s === undefined) return "-";
  if (s < 120) return s + " s";
  if (s < 7200) return Math.floor(s / 60) + " min";
  if (s < 172800) return Math.floor(s / 3600) + " h";
  return Math.floor(s / 86400) + " d";
}

function ago(t, now) { return t === null || t === undefined ? "never" : duration(Math.max(0, now - t)) + " ago"; }

function two(n) { return String(n).padStart(2, "0"); }

// ------------------------------------------------------------ branches

function sortValue(b, key) {
  if (key === "state") return STATE_ORDER[b.state];
  const v = b[key];
  return v === null || v === undefined || v === "" ? null : v;
}

function sorted(list) {
  const k = sort.key, d = sort.dir === "asc" ? 1 : -1;
  return list.slice().sort((a, b) => {
    const x = sortValue(a, k), y = sortValue(b, k);
    if (x === null || y === null) return (x === null) - (y === null);  // unknown last
    if (x < y) return -d;
    if (x > y) return d;
    return a.code < b.code ? -1 : a.code > b.code ? 1 : 0;
  });
}

function countLink(cls, kind, code, n) {
  const a = el("a", cls + (n ? "" : " zero"), n);
  a.href = "#" + kind + "/" + encodeURIComponent(code);
  a.title = "Open " + kind + " of " + code;
  return a;
}

function branchRow(b, now) {
  const tr = el("tr", "state-" + b.state);
  tr.dataset.branch = b.code;
  const cell = (cls, text) => tr.appendChild(el("td", cls, text));
  cell("c-branch", b.code);
  cell("c-state", b.state);
  cell("c-queue num", num(b.queue_events));
  cell("c-age num", duration(b.oldest_age_s));
  const seen = cell("c-seen", ago(b.last_seen, now));
  if (b.last_seen !== null) seen.title = new Date(b.last_seen * 1000).toLocaleString();
  cell("c-version", b.agent_version || "-");
  cell("c-rejects num").appendChild(countLink("open-rejects", "rejects", b.code, b.open_rejects));
  cell("c-conflicts num").appendChild(countLink("open-conflicts", "conflicts", b.code, b.open_conflicts));
  const err = cell("c-error", b.last_error ? ago(b.last_error_at, now) + ": " + b.last_error : "");
  if (b.last_error) err.title = b.last_error;
  return tr;
}

// A till's line under its branch: its own queue, last seen, version and
// last error; rejects and conflicts are counted per branch.
function tillRow(b, t, now) {
  const tr = el("tr", "till state-" + t.state);
  tr.dataset.till = b.code + "/" + t.code;
  const cell = (cls, text) => tr.appendChild(el("td", cls, text));
  cell("c-branch", "till " + t.code);
  cell("c-state", t.state);
  cell("c-queue num", num(t.queue_events));
  cell("c-age num", duration(t.oldest_age_s));
  const seen = cell("c-seen", ago(t.last_seen, now));
  if (t.last_seen !== null) seen.title = new Date(t.last_seen * 1000).toLocaleString();
  cell("c-version", t.agent_version || "-");
  cell("c-rejects num", "");
  cell("c-conflicts num", "");
  const err = cell("c-error", t.last_error ? ago(t.last_error_at, now) + ": " + t.last_error : "");
  if (t.last_error) err.title = t.last_error;
  return tr;
}

function renderBranches() {
  if (!lastStatus) return;
  const tbody = $("#branches tbody");
  const now = lastStatus.hub.now;
  const rows = sorted(lastStatus.branches).flatMap((b) =>
    [branchRow(b, now), ...(b.tills || []).map((t) => tillRow(b, t, now))]);
  if (!rows.length) {
    const td = el("td", "empty", "No branches yet: add one with \"branchsync-hub branch add CODE\".");
    td.colSpan = 9;
    rows.push(el("tr"));
    rows[0].appendChild(td);
  }
  tbody.replaceChildren(...rows);
  for (const th of document.querySelectorAll("#branches th[data-sort]")) {
    th.classList.remove("sorted-asc", "sorted-desc");
    if (th.dataset.sort === sort.key) th.classList.add("sorted-" + sort.dir);
  }
}

function renderSummary() {
  const c = { ok: 0, behind: 0, silent: 0, never: 0, disabled: 0 };
  for (const b of lastStatus.branches) c[b.state]++;
  const n = lastStatus.branches.length - c.disabled;
  let s = n + (n === 1 ? " branch" : " branches") + ": " + c.ok + " ok, " + c.behind +
    " behind, " + c.silent + " silent, " + c.never + " never seen";
  if (c.disabled) s += " (" + c.disabled + " disabled)";
  $("#summary").textContent = s;
}

// --------------------------------------------------------------- chart

const SVG_NS = document.getElementById("chart").namespaceURI;
const BOX = { w: 1000, h: 240, l: 64, r: 16, t: 12, b: 26 };  // w: set to the drawn width

function svg(tag, attrs, text) {
  const e = document.createElementNS(SVG_NS, tag);
  for (const k in attrs) e.setAttribute(k, attrs[k]);
  if (text !== undefined) e.textContent = text;
  return e;
}

function niceMax(v) {
  if (v <= 0) return 10;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

// pathData draws points as line segments, broken where samples are missing.
function pathData(points, x, y, gap) {
  let d = "", last = null;
  for (const [t, v] of points) {
    d += (last === null || t - last > gap ? "M" : "L") + x(t).toFixed(1) + " " + y(v).toFixed(1) + " ";
    last = t;
  }
  return d.trim();
}

function renderChart() {
  const chart = $("#chart"), legend = $("#legend");
  BOX.w = Math.max(400, Math.round(chart.clientWidth) || 1000);  // 1 unit = 1 pixel: text keeps its size
  chart.setAttribute("viewBox", "0 0 " + BOX.w + " " + BOX.h);
  const now = lastHistory.now, from = now - 3600;
  const pw = BOX.w - BOX.l - BOX.r, ph = BOX.h - BOX.t - BOX.b;
  const top = niceMax(Math.max(0, ...lastHistory.total.map((p) => p[1])));
  const x = (t) => BOX.l + ((t - from) / 3600) * pw;
  const y = (v) => BOX.t + ph - (v / top) * ph;
  const gap = Math.max(3 * lastHistory.interval_s, 5);
  const parts = [];
  for (let i = 0; i <= 4; i++) {
    const v = (top * i) / 4, yy = y(v);
    parts.push(svg("line", { class: "grid", x1: BOX.l, x2: BOX.w - BOX.r, y1: yy, y2: yy }));
    parts.push(svg("text", { x: BOX.l - 8, y: yy + 4, "text-anchor": "end" }, num(v)));
  }
  for (let m = 60; m >= 0; m -= 15) {
    parts.push(svg("text", { x: x(now - m * 60), y: BOX.h - 6, "text-anchor": m === 60 ? "start" : m ? "middle" : "end" },
                   m ? "-" + m + " min" : "now"));
  }
  legend.replaceChildren();
  lastHistory.series.forEach((s, i) => {
    const color = PALETTE[i % PALETTE.length];
    const p = svg("path", { class: "series", d: pathData(s.points, x, y, gap), stroke: color });
    p.dataset.branch = s.branch;
    p.appendChild(svg("title", {}, s.branch));
    parts.push(p);
    const item = el("span");
    const swatch = el("i");
    swatch.style.background = color;
    item.append(swatch, s.branch);
    legend.appendChild(item);
  });
  const total = svg("path", { class: "series-total", d: pathData(lastHistory.total, x, y, gap) });
  total.appendChild(svg("title", {}, "all branches"));
  parts.push(total);
  const item = el("span");
  const swatch = el("i");
  swatch.style.background = "#1d2430";
  item.append(swatch, "total");
  legend.prepend(item);
  if (!lastHistory.total.length) {
    parts.push(svg("text", { x: BOX.l + pw / 2, y: BOX.t + ph / 2, "text-anchor": "middle" }, "no samples yet"));
  }
  chart.replaceChildren(...parts);
}

// ---------------------------------------------------- rejects, conflicts

const LISTS = {
  rejects: { title: "Open rejects of ", cols: [["ID", "id"], ["Seq", "seq"], ["Table", "tbl"],
             ["Key", "key"], ["State", "state"], ["Reason", "reason"], ["Created", "created_at"]] },
  conflicts: { title: "Open conflicts of ", cols: [["ID", "id"], ["Seq", "seq"], ["Table", "tbl"],
               ["Key", "key"], ["Type", "type"], ["Created", "created_at"]] },
};

function listCell(item, field) {
  const v = item[field];
  if (field === "created_at") return v === null ? "-" : new Date(v * 1000).toLocaleString();
  if (field === "key") return Array.isArray(v) ? v.map((k) => JSON.stringify(k)).join(", ") : JSON.stringify(v);
  return v === null || v === undefined ? "-" : v;
}

async function showList() {
  const m = /^#(rejects|conflicts)\/(.+)$/.exec(location.hash);
  const section = $("#list");
  if (!m) {
    section.hidden = true;
    return;
  }
  const kind = m[1], code = decodeURIComponent(m[2]), spec = LISTS[kind];
  $("#list-title").textContent = spec.title + code;
  const head = el("tr");
  for (const [label] of spec.cols) head.appendChild(el("th", null, label));
  $("#list-table thead").replaceChildren(head);
  const tbody = $("#list-table tbody");
  tbody.replaceChildren();
  section.hidden = false;
  let items;
  try {
    items = (await getJSON("/api/" + kind + "?branch=" + encodeURIComponent(code)))[kind];
  } catch (e) {
    items = null;
    const td = el("td", "empty", "Could not load: " + e.message);
    td.colSpan = spec.cols.length;
    tbody.replaceChildren(el("tr"));
    tbody.firstChild.appendChild(td);
  }
  if (!items || location.hash !== m[0]) return;
  const rows = items.map((it) => {
    const tr = el("tr");
    for (const [, field] of spec.cols) tr.appendChild(el("td", field === "reason" ? "c-reason" : null, listCell(it, field)));
    return tr;
  });
  if (!rows.length) {
    const td = el("td", "empty", "None open.");
    td.colSpan = spec.cols.length;
    rows.push(el("tr"));
    rows[0].appendChild(td);
  }
  tbody.replaceChildren(...rows);
}

// ---------------------------------------------------------------- poll

async function poll() {
  try {
    const [st, hist] = await Promise.all([getJSON("/api/status"), getJSON("/api/history")]);
    lastStatus = st;
    lastHistory = hist;
    renderSummary();
    renderBranches();
    renderChart();
    const d = new Date();
    $("#updated").textContent = "updated " + two(d.getHours()) + ":" + two(d.getMinutes()) + ":" + two(d.getSeconds());
    $("#error").hidden = true;
  } catch (e) {
    const box = $("#error");
    box.textContent = "Could not reach the hub: " + e.message;
    box.hidden = false;
  } finally {
    setTimeout(poll, POLL_MS);
  }
}

for (const th of document.querySelectorAll("#branches th[data-sort]")) {
  th.addEventListener("click", () => {
    const key = th.dataset.sort;
    if (sort.key === key) sort.dir = sort.dir === "asc" ? "desc" : "asc";
    else sort = { key, dir: key === "code" || key === "state" ? "asc" : "desc" };
    renderBranches();
  });
}
window.addEventListener("hashchange", showList);
window.addEventListener("resize", () => { if (lastHistory) renderChart(); });
showList();
poll();
