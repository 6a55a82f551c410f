// The live dashboard: polls /dashboard/data.json every second and redraws plain SVG charts.
// No library: nothing can be fetched from a CDN where this runs.
"use strict";

const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"];
const SVG_NS = "http://www.w3.org/2000/svg";
const POLL_MS = 1000;

function el(name, attrs, parent) {
  const node = document.createElementNS(SVG_NS, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (parent) parent.appendChild(node);
  return node;
}

// series: [{name, points: [[x, y], ...]}]; markers: [{x, label}]; dots: draw points instead of lines.
function drawChart(id, series, opts = {}) {
  const svg = document.getElementById(id);
  const width = svg.clientWidth || 460, height = svg.clientHeight || 180;
  const pad = {left: 44, right: 8, top: 8, bottom: 20};
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  while (svg.firstChild) svg.removeChild(svg.firstChild);
  const all = series.flatMap(s => s.points).filter(p => p[1] !== null && p[1] !== undefined);
  svg.setAttribute("data-points", String(all.length));
  if (!all.length) {
    el("text", {x: width / 2, y: height / 2, "text-anchor": "middle", fill: "#999"}, svg).textContent = "waiting for data";
    return;
  }
  let [x0, x1] = [Math.min(...all.map(p => p[0])), Math.max(...all.map(p => p[0]))];
  let [y0, y1] = opts.yRange || [Math.min(...all.map(p => p[1])), Math.max(...all.map(p => p[1]))];
  if (x1 === x0) x1 = x0 + 1;
  if (y1 === y0) { y0 -= 0.5; y1 += 0.5; }
  const sx = x => pad.left + (x - x0) / (x1 - x0) * (width - pad.left - pad.right);
  const sy = y => height - pad.bottom - (y - y0) / (y1 - y0) * (height - pad.top - pad.bottom);
  el("line", {x1: pad.left, x2: pad.left, y1: pad.top, y2: height - pad.bottom, stroke: "#999"}, svg);
  el("line", {x1: pad.left, x2: width - pad.right, y1: height - pad.bottom, y2: height - pad.bottom, stroke: "#999"}, svg);
  // Enough decimals that the three ticks differ, e.g. 0.881 / 0.885 / 0.889 for a narrow band.
  const decimals = Math.min(6, Math.max(0, Math.ceil(-Math.log10(y1 - y0)) + 1));
  for (const y of [y0, (y0 + y1) / 2, y1]) {
    el("text", {x: pad.left - 4, y: sy(y) + 4, "text-anchor": "end", "font-size": 10, fill: "#555"}, svg)
      .textContent = y.toFixed(decimals);
  }
  el("text", {x: width - pad.right, y: height - 4, "text-anchor": "end", "font-size": 10, fill: "#555"}, svg)
    .textContent = opts.xLabel || "";
  for (const m of opts.markers || []) {
    if (m.x < x0 || m.x > x1) continue;
    el("line", {x1: sx(m.x), x2: sx(m.x), y1: pad.top, y2: height - pad.bottom, stroke: "#888",
                "stroke-dasharray": "4 3", class: "deploy-marker"}, svg);
    el("text", {x: sx(m.x) + 3, y: pad.top + 10, "font-size": 10, fill: "#555"}, svg).textContent = m.label;
  }
  series.forEach((s, i) => {
    const color = s.color || COLORS[i % COLORS.length];
    const pts = s.points.filter(p => p[1] !== null && p[1] !== undefined);
    if (opts.dots) {
      for (const p of pts) el("circle", {cx: sx(p[0]), cy: sy(p[1]), r: 2.5, fill: color, "class": "point"}, svg);
    } else if (pts.length) {
      el("polyline", {points: pts.map(p => `${sx(p[0]).toFixed(1)},${sy(p[1]).toFixed(1)}`).join(" "),
                      fill: "none", stroke: color, "stroke-width": 1.5, "class": "series"}, svg);
    }
  });
  if (opts.legend) {
    document.getElementById(opts.legend).innerHTML = series
      .map((s, i) => `<span style="color:${s.color || COLORS[i % COLORS.length]}">&#9632; ${s.name}</span>`).join("");
  }
}

function versions(samples) {
  const names = new Set();
  for (const s of samples) for (const v of Object.keys(s.versions)) names.add(v);
  return [...names];
}

function render(data) {
  const t0 = data.samples.length ? data.samples[0].t : 0;
  const rel = t => t - t0;
  const samples = data.samples;
  const markers = data.deploys.map(d => ({x: rel(d.t), label: d.version + " deployed"}));
  drawChart("chart-throughput", [{name: "predictions/s", points: samples.map(s => [rel(s.t), s.throughput])}],
            {xLabel: "seconds", markers});
  drawChart("chart-latency", [
    {name: "p50", points: samples.map(s => [rel(s.t), s.latency_p50_ms])},
    {name: "p99", points: samples.map(s => [rel(s.t), s.latency_p99_ms])},
  ], {xLabel: "seconds", legend: "legend-latency"});
  const quality = versions(samples).map(v => {
    const key = samples.some(s => s.versions[v] && s.versions[v].rolling_accuracy !== undefined) ? "rolling_accuracy" : "rolling_mae";
    return {name: `${v} ${key}`, points: samples.map(s => [rel(s.t), s.versions[v] ? s.versions[v][key] : null])};
  });
  drawChart("chart-quality", quality, {xLabel: "seconds", markers, legend: "legend-quality"});
  drawChart("chart-coverage", versions(samples).map(v => ({
    name: v, points: samples.map(s => [rel(s.t), s.versions[v] ? s.versions[v].label_coverage : null])})),
    {xLabel: "seconds", yRange: [0, 1], markers, legend: "legend-coverage"});
  const byVersion = {};
  for (const p of data.predictions) {
    if (p.score === null) continue;
    const key = `${p.version}: ${p.label}`;
    (byVersion[key] = byVersion[key] || []).push([(p.t_ms - data.now_ms) / 1000, p.score]);
  }
  drawChart("chart-predictions", Object.entries(byVersion).map(([name, points]) => ({name, points})),
            {xLabel: "seconds ago", yRange: [0, 1], dots: true, legend: "legend-predictions"});
  const body = document.querySelector("#alerts tbody");
  body.innerHTML = data.alerts.slice().reverse().map(a =>
    `<tr class="alert-${a.alert_type}"><td>${new Date(a.raised_at_ms).toLocaleTimeString()}</td>` +
    `<td>${a.version}</td><td>${a.alert_type}</td><td>${a.message}</td></tr>`).join("");
  document.getElementById("alerts").setAttribute("data-rows", String(data.alerts.length));
  const last = samples[samples.length - 1];
  document.getElementById("status").textContent = last
    ? `updated ${new Date(data.now_ms).toLocaleTimeString()}: ${last.records_in} records in, ` +
      `${data.predictions.length} predictions in the last minute, ${data.alerts.length} alerts`
    : "waiting for the first sample";
}

async function poll() {
  try {
    const response = await fetch("/dashboard/data.json", {cache: "no-store"});
    render(await response.json());
  } catch (err) {
    document.getElementById("status").textContent = "cannot reach the app: " + err;
  }
  setTimeout(poll, POLL_MS);
}

poll();
