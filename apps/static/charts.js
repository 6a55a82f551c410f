// Charts and the polling loop both dashboards share (the scorer's, the linkage app's), on uPlot
// (apps/static/vendor/, served from the app itself: nothing is fetched from a CDN).
//
// Each chart is a <div> the page names; the chart keeps what it draws in data attributes
// (data-points, data-threshold, data-markers, data-first) so a test can read them from the DOM.
"use strict";

const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf", "#7f7f7f"];
const MARKER_COLORS = {deploy: "#2ca02c", rollback: "#d62728", serving: "#888"};
const POLL_MS = 1000;
const HEIGHT = 190;
const charts = {};  // element id -> {plot, key, state}

function count(n) {
  return n === null || n === undefined ? "n/a" : Math.round(n).toLocaleString("en-US");
}

function fixed(value, digits) {
  return value === null || value === undefined ? "n/a" : value.toFixed(digits);
}

// Tick labels with as many decimals as the step between ticks needs (0.86, 0.88 / 1.2k / 350).
function tickLabels(u, ticks) {
  const step = ticks.length > 1 ? Math.abs(ticks[1] - ticks[0]) : 1;
  const decimals = step >= 1 ? 0 : Math.min(6, Math.ceil(-Math.log10(step)));
  return ticks.map(v => Math.abs(v) >= 10000 ? (v / 1000).toFixed(0) + "k" : v.toFixed(decimals));
}

function clockTime(seconds) {
  return new Date(seconds * 1000).toLocaleTimeString("en-GB");
}

// Clock ticks on a 24-hour clock: 14:05:30 a few seconds apart, 14:05 minutes apart.
function clockTicks(u, ticks, axis, space, step) {
  const seconds = step < 60;
  return ticks.map(t => new Date(t * 1000).toLocaleTimeString("en-GB",
    seconds ? {} : {hour: "2-digit", minute: "2-digit"}));
}

// The threshold (a horizontal dashed line) and the markers (vertical dashed lines), drawn over the series.
function drawOverlays(u, state) {
  const ctx = u.ctx, {left, top, width, height} = u.bbox, px = devicePixelRatio;
  ctx.save();
  ctx.font = `${11 * px}px system-ui, sans-serif`;
  ctx.textAlign = "left";  // uPlot leaves it as its last axis drew
  ctx.setLineDash([5 * px, 4 * px]);
  ctx.lineWidth = 1.5 * px;
  if (state.threshold) {
    const y = u.valToPos(state.threshold.value, "y", true);
    ctx.strokeStyle = ctx.fillStyle = "#b00020";
    ctx.beginPath(); ctx.moveTo(left, y); ctx.lineTo(left + width, y); ctx.stroke();
    ctx.fillText(state.threshold.label, left + 4 * px, y - 4 * px);
  }
  const rowEnds = [];  // a label goes on the first row where it does not overlap the one before
  for (const m of state.markers) {
    const x = u.valToPos(m.t, "x", true);
    if (x < left || x > left + width) continue;
    ctx.strokeStyle = ctx.fillStyle = MARKER_COLORS[m.kind] || "#888";
    ctx.beginPath(); ctx.moveTo(x, top); ctx.lineTo(x, top + height); ctx.stroke();
    if (!state.markerLabels) continue;
    const textWidth = ctx.measureText(m.label).width;
    const start = x + textWidth + 3 * px > left + width ? x - textWidth - 3 * px : x + 3 * px;
    let row = rowEnds.findIndex(end => start > end);
    if (row < 0) { row = rowEnds.length; rowEnds.push(0); }
    rowEnds[row] = start + textWidth + 6 * px;
    ctx.fillText(m.label, start, top + (12 + 13 * row) * px);
  }
  ctx.restore();
}

// series: [{name, values, color}] over times (epoch seconds); opts: {range: [from, to] of x,
// yRange, threshold: {value, label}, markers: [{t, label, kind}], markerLabels, dots, bars (x not time)}.
function chart(id, times, series, opts = {}) {
  const el = document.getElementById(id);
  const key = series.map(s => s.name).join("|") + (opts.bars ? "|bars" : "");
  const state = {threshold: opts.threshold || null, markers: opts.markers || [], range: opts.range,
                 markerLabels: !!opts.markerLabels};
  let entry = charts[id];
  if (!entry || entry.key !== key) {
    if (entry) entry.plot.destroy();
    el.textContent = "";
    const bars = opts.bars ? uPlot.paths.bars({size: [0.9, 60]}) : null;
    const holder = {state};
    const plot = new uPlot({
      width: el.clientWidth || 460, height: HEIGHT,
      cursor: {drag: {x: false, y: false}},
      scales: {
        x: {time: !opts.bars, range: (u, lo, hi) => holder.state.range || [lo, hi]},
        y: {range: (u, lo, hi) => yRange(holder.state, opts.yRange, lo, hi)},
      },
      legend: {live: false},
      axes: [{values: opts.bars ? tickLabels : clockTicks, space: 70}, {size: 52, values: tickLabels}],
      series: [{label: opts.bars ? opts.xLabel || "value" : "time", value: (u, v) => v === null ? "" :
                 opts.bars ? fixed(v, 3) : clockTime(v)},
               ...series.map((s, i) => {
                 const color = s.color || COLORS[i % COLORS.length];
                 return {label: s.name, stroke: color, width: 1.5, spanGaps: !opts.dots,
                         fill: opts.bars ? color + (i ? "99" : "44") : undefined,
                         paths: opts.dots ? () => null : bars || undefined,
                         points: {show: !!opts.dots, size: 4, fill: color}};
               })],
      hooks: {draw: [u => drawOverlays(u, holder.state)]},
    }, [[], ...series.map(() => [])], el);
    entry = charts[id] = {plot, key, holder};
  }
  entry.holder.state = state;
  entry.plot.setData([times, ...series.map(s => s.values)]);
  const points = series.reduce((n, s) => n + s.values.filter(v => v !== null && v !== undefined).length, 0);
  el.dataset.points = String(points);
  el.dataset.threshold = state.threshold ? String(state.threshold.value) : "";
  const [from, to] = state.range || [times[0], times[times.length - 1]];
  el.dataset.markers = String(state.markers.filter(m => m.t >= from && m.t <= to).length);
  el.dataset.first = times.length ? String(times[0]) : "";
}

function yRange(state, fixedRange, lo, hi) {
  if (fixedRange) return fixedRange;
  if (lo === null || hi === null) return [0, 1];
  if (state.threshold) { lo = Math.min(lo, state.threshold.value); hi = Math.max(hi, state.threshold.value); }
  const pad = (hi - lo) * 0.08 || Math.abs(hi) * 0.1 || 1;
  return [lo >= 0 && lo - pad < 0 ? 0 : lo - pad, hi + pad];
}

window.addEventListener("resize", () => {
  for (const [id, entry] of Object.entries(charts)) {
    entry.plot.setSize({width: document.getElementById(id).clientWidth, height: HEIGHT});
  }
});

// The window the page shows: ?window=<seconds> in its address, one of the buttons in #windows.
function currentWindow() {
  return new URLSearchParams(location.search).get("window") || "300";
}

function windowPicker(windows) {
  const holder = document.getElementById("windows");
  if (holder.childElementCount) return;
  const chosen = currentWindow();
  holder.innerHTML = "show the last " + Object.entries(windows).map(([seconds, name]) =>
    `<a href="?window=${seconds}" class="${seconds === chosen ? "chosen" : ""}">${name}</a>`).join(" ");
}

// Fetch /dashboard/data.json for the chosen window every second and hand it to the page's render.
async function pollData(render) {
  try {
    const response = await fetch(`/dashboard/data.json?window=${currentWindow()}`, {cache: "no-store"});
    const data = await response.json();
    if (!response.ok) throw new Error(data.error);
    windowPicker(data.windows);
    render(data, [data.now_ms / 1000 - data.window_s, data.now_ms / 1000]);
  } catch (err) {
    document.getElementById("status").textContent = "cannot reach the app: " + err;
  }
  setTimeout(() => pollData(render), POLL_MS);
}
