// Plain SVG line and dot charts and the polling loop, shared by the scorer's and the linkage app's dashboards.
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

// Fetch /dashboard/data.json every second and hand it to the page's render.
async function pollData(render) {
  try {
    const response = await fetch("/dashboard/data.json", {cache: "no-store"});
    render(await response.json());
  } catch (err) {
    document.getElementById("status").textContent = "cannot reach the app: " + err;
  }
  setTimeout(() => pollData(render), POLL_MS);
}
