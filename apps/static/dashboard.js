// The scorer's live dashboard: polls /dashboard/data.json every second and redraws the
// charts of charts.js.
"use strict";

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

pollData(render);
