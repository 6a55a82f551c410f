// The scorer's live dashboard: polls /dashboard/data.json for the chosen window every second and
// redraws the charts of charts.js.
"use strict";

function versions(samples) {
  const names = new Set();
  for (const s of samples) for (const v of Object.keys(s.versions)) names.add(v);
  return [...names];
}

function markerLabel(m) {
  const shadow = m.role === "shadow" ? " in shadow" : "";
  if (m.kind === "rollback") return `rolled back to ${m.version}${shadow}`;
  if (m.kind === "deploy") return `${m.version} deployed${shadow}`;
  return `${m.version} serving`;
}

// A rollback's reason starts with "rollback" (the registry's mark); the label says so already.
function markerReason(m) {
  return m.kind === "rollback" ? m.reason.replace(/^rollback:?\s*/, "") : m.reason;
}

function escapeHtml(text) {
  return String(text).replace(/[&<>"]/g, c => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}[c]));
}

function renderQuality(data, samples, times, range, markers) {
  const names = versions(samples);
  const accuracy = names.some(v => samples.some(s => s.versions[v] && s.versions[v].rolling_accuracy !== undefined));
  const key = accuracy ? "rolling_accuracy" : "rolling_mae";
  const last = samples[samples.length - 1];
  const champion = last ? Object.keys(last.versions)[0] : undefined;
  const limit = accuracy && champion && data.thresholds[champion] ? data.thresholds[champion].rolling_accuracy : null;
  chart("chart-quality", times, names.map(v => ({name: `${v} ${key}`,
                                                 values: samples.map(s => s.versions[v] ? s.versions[v][key] : null)})),
        {range, markers, markerLabels: true,
         threshold: limit === null ? null : {value: limit, label: `alert threshold ${limit.toFixed(2)}`}});
  document.getElementById("markers").innerHTML = data.markers.slice().reverse().map(m =>
    `<li class="marker-${m.kind}">${clockTime(m.t)} ${escapeHtml(markerLabel(m))}` +
    `${markerReason(m) ? ": " + escapeHtml(markerReason(m)) : ""}</li>`).join("");
  document.getElementById("markers").setAttribute("data-rows", String(data.markers.length));
  // The alert warm-up: threshold alerts wait until a build has learned warm_up_labels labels since it started serving.
  const figures = last && champion ? last.versions[champion] : {};
  document.getElementById("warm-up").textContent = figures.warm_up_labels === undefined
    ? "alert warm-up: not reported by this version"
    : `alert warm-up: ${count(figures.records_learned)} of ${count(figures.warm_up_labels)} labels learned since ` +
      `${champion} started serving` + (figures.warming_up ? " (threshold alerts wait)" : " (threshold alerts armed)");
}

function renderPredictions(data, range) {
  const points = data.predictions.points.filter(p => p.score !== null).sort((a, b) => a.t_ms - b.t_ms);
  const groups = [...new Set(points.map(p => `${p.version}: ${p.label}`))];
  chart("chart-predictions", points.map(p => p.t_ms / 1000), groups.map(g => ({
    name: g, values: points.map(p => `${p.version}: ${p.label}` === g ? p.score : null)})),
    {range: [data.now_ms / 1000 - 60, data.now_ms / 1000], yRange: [0, 1], dots: true});
  const p = data.predictions;
  document.getElementById("predictions-count").textContent =
    `${count(p.sent_last_minute)} predictions sent in the last minute; ${count(p.shown)} drawn ` +
    `(the page keeps the latest ${count(p.kept_at_most)})`;
}

function renderDrift(data, samples) {
  const holder = document.getElementById("drift");
  const last = samples[samples.length - 1];
  const serving = last ? Object.keys(last.versions) : [];
  const note = document.getElementById("drift-note");
  if (!data.drift.features.length) {
    note.textContent = "no features chosen: set MLSTREAM_DRIFT_FEATURES (e.g. x1,x2) for PageHinkley and this panel";
    return;
  }
  note.textContent = `features ${data.drift.features.join(", ")}: share of the values per bin, the model's ` +
    `reference against the latest ${count(500)} values; flagged when a two-sample Kolmogorov-Smirnov test ` +
    "gives p < 0.01 or PageHinkley fired";
  const cards = [];
  for (const version of serving) {
    for (const [feature, view] of Object.entries(data.drift.versions[version] || {})) {
      cards.push({version, feature, view});
    }
  }
  cards.forEach(({version, feature, view}, i) => {
    let card = document.getElementById(`drift-card-${i}`);
    if (!card) {
      card = document.createElement("div");
      card.className = "card";
      card.id = `drift-card-${i}`;
      card.innerHTML = `<h2></h2><div class="note reference"></div>` +
        `<div class="chart" id="chart-drift-${i}" data-points="0"></div>`;
      holder.appendChild(card);
    }
    const flags = [];
    if (view.ks_flagged) flags.push(`KS test p = ${view.ks_p.toExponential(1)}`);
    if (view.page_hinkley_at_ms) flags.push(`PageHinkley fired at ${clockTime(view.page_hinkley_at_ms / 1000)}`);
    card.dataset.flagged = flags.length ? "true" : "false";
    const quiet = view.ks_p === null ? "KS test: too few values yet"
      : view.ks_flagged ? "" : `KS p = ${view.ks_p.toFixed(2)}`;
    card.querySelector("h2").innerHTML = `${escapeHtml(feature)} (${escapeHtml(version)}) ` +
      (flags.length ? `<span class="flagged">drift: ${flags.join("; ")}</span>` : "<span>no drift</span>") +
      (quiet ? ` <span class="quiet">${quiet}</span>` : "");
    card.querySelector(".reference").textContent =
      `reference: ${view.reference_source} (${count(view.reference_n)} values); ` +
      `current: the latest ${count(view.current_n)} values`;
    const centers = view.edges.slice(1).map((e, j) => (e + view.edges[j]) / 2);
    chart(`chart-drift-${i}`, centers, [{name: "reference", values: view.reference, color: "#7f7f7f"},
                                        {name: "current", values: view.current, color: "#1f77b4"}],
          {bars: true, xLabel: feature,
           range: view.edges.length ? [view.edges[0], view.edges[view.edges.length - 1]] : undefined,
           yRange: [0, Math.max(0.05, ...view.reference, ...view.current) * 1.1]});
  });
  while (holder.childElementCount > cards.length) holder.removeChild(holder.lastChild);
}

function renderFigures(data, last) {
  const champion = Object.keys(last.versions)[0];
  const figures = last.versions[champion] || {};
  const quality = figures.rolling_accuracy !== undefined ? ["rolling accuracy", fixed(figures.rolling_accuracy, 3)]
                                                         : ["rolling MAE", fixed(figures.rolling_mae, 3)];
  document.getElementById("figures").innerHTML = [
    [count(last.records_in), "records in since the app started"],
    [count(data.predictions.sent_last_minute), "predictions sent in the last minute"],
    [count(last.labels_in), "labels in since the app started"],
    [quality[1], `${quality[0]} of ${champion}`],
    [count(data.alerts_in_window), `alerts in the last ${data.windows[data.window_s]}`],
    [count(last.dead_letters), "dead-lettered since the app started"],
  ].map(([value, name]) => `<div class="figure"><b>${value}</b><span>${escapeHtml(name)}</span></div>`).join("");
}

// The labels an alert's figure is based on when the alert says (labels_judged), else the labels learned so far.
function basedOn(alert) {
  return alert.labels_judged === undefined || alert.labels_judged === null
    ? `${count(alert.records_learned)} learned` : `${count(alert.labels_judged)} judged`;
}

function render(data, range) {
  const samples = data.samples, times = samples.map(s => s.t);
  const markers = data.markers.map(m => ({t: m.t, kind: m.kind, label: markerLabel(m)}));
  chart("chart-throughput", times, [{name: "predictions/s", values: samples.map(s => s.throughput)}],
        {range, markers});
  chart("chart-latency", times, [{name: "p50 ms", values: samples.map(s => s.latency_p50_ms)},
                                 {name: "p99 ms", values: samples.map(s => s.latency_p99_ms)}], {range});
  renderQuality(data, samples, times, range, markers);
  chart("chart-coverage", times, versions(samples).map(v => ({
    name: v, values: samples.map(s => s.versions[v] ? s.versions[v].label_coverage : null)})),
    {range, yRange: [0, 1.05], markers});
  renderPredictions(data, range);
  renderDrift(data, samples);
  const body = document.querySelector("#alerts tbody");
  body.innerHTML = data.alerts.slice().reverse().map(a =>
    `<tr class="alert-${a.alert_type}"><td>${clockTime(a.raised_at_ms / 1000)}</td><td>${escapeHtml(a.version)}</td>` +
    `<td>${a.alert_type}</td><td>${basedOn(a)}</td><td>${escapeHtml(a.message)}</td></tr>`).join("");
  document.getElementById("alerts").setAttribute("data-rows", String(data.alerts.length));
  document.getElementById("alerts-count").textContent = data.alerts_in_window > data.alerts.length
    ? `the latest ${count(data.alerts.length)} of ${count(data.alerts_in_window)} alerts in the last ` +
      data.windows[data.window_s] : `${count(data.alerts_in_window)} in the last ${data.windows[data.window_s]}`;
  const last = samples[samples.length - 1];
  if (!last) {
    document.getElementById("status").textContent = "waiting for the first sample";
    return;
  }
  renderFigures(data, last);
  const restored = data.restored;
  const history = !restored.done ? "reading the history back from the topics"
    : restored.error ? `history not read back (${restored.error})`
    : `${count(restored.samples)} samples, ${count(restored.markers)} deploys and ${count(restored.alerts)} alerts ` +
      "from before this process read back from the topics";
  document.getElementById("status").textContent =
    `updated ${clockTime(data.now_ms / 1000)}: ${count(last.records_in)} records in since the app started, ` +
    `serving ${Object.keys(last.versions).join(" and ")}; ${history}`;
}

pollData(render);
