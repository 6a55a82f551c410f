// The linkage app's live dashboard: polls /dashboard/data.json every second and redraws the
// charts of charts.js.
"use strict";

const QUALITY = [["f1", "F1"], ["precision", "precision"], ["recall", "recall"],
                 ["pairs_completeness", "pairs completeness"]];
const BAD_INPUT = {dead_letters: "dead-lettered (every reason)", duplicate_records: "exact repeats skipped",
                   unknown_source: "unknown source", empty_records: "empty records",
                   records_without_blocking_keys: "no blocking key (linked to nothing)"};

function fmt(value, digits) {
  return value === null || value === undefined ? "n/a" : value.toFixed(digits);
}

function render(data) {
  const samples = data.samples;
  const t0 = samples.length ? samples[0].t : 0;
  const series = (name, pick) => ({name, points: samples.map(s => [s.t - t0, pick(s)])});
  drawChart("chart-throughput", [series("records/s", s => s.throughput)], {xLabel: "seconds"});
  drawChart("chart-latency", [series("p50", s => s.end_to_end_p50_ms), series("p99", s => s.end_to_end_p99_ms)],
            {xLabel: "seconds", legend: "legend-latency"});
  drawChart("chart-quality", QUALITY.map(([key, name]) => series(name, s => s.quality ? s.quality[key] : null)),
            {xLabel: "seconds", legend: "legend-quality"});
  drawChart("chart-entities", [series("entities", s => s.entities), series("links", s => s.links)],
            {xLabel: "seconds", legend: "legend-entities"});
  const last = samples[samples.length - 1];
  const bad = last ? last.bad_input : {};
  document.querySelector("#bad-input tbody").innerHTML = Object.entries(BAD_INPUT)
    .map(([key, label]) => `<tr><td>${label}</td><td>${bad[key] || 0}</td></tr>`).join("");
  document.getElementById("bad-input").setAttribute("data-rows", String(Object.keys(BAD_INPUT).length));
  document.querySelector("#merges tbody").innerHTML = data.merges.slice().reverse().map(m =>
    `<tr><td>${new Date(m.t_ms).toLocaleTimeString()}</td><td>${m.entity_id}</td>` +
    `<td>${m.merged_from.join(", ")}</td><td>${m.records}</td></tr>`).join("");
  document.getElementById("merges").setAttribute("data-rows", String(data.merges.length));
  if (!last) {
    document.getElementById("status").textContent = "waiting for the first sample";
    return;
  }
  const q = last.quality || {};
  const figures = [["records in", last.records_in, 0], ["linked/s", last.throughput, 0],
                   ["p99 latency ms", last.end_to_end_p99_ms, 1], ["entities", last.entities, 0],
                   ["F1", q.f1, 4], ["precision", q.precision, 4], ["recall", q.recall, 4],
                   ["pairs completeness", q.pairs_completeness, 4], ["reduction ratio", q.reduction_ratio, 5]];
  document.getElementById("figures").innerHTML = figures
    .map(([name, value, digits]) => `<div class="figure"><b>${fmt(value, digits)}</b><span>${name}</span></div>`).join("");
  document.getElementById("status").textContent =
    `updated ${new Date(data.now_ms).toLocaleTimeString()}: config ${data.config.name} ${data.config.version} ` +
    `(${data.config.mode}), ${last.records_in} records in, ${last.links_out} link events, ` +
    `model fitted ${last.model_fits} times` + (last.quality ? "" : data.config.truth ? "; no record linked yet, so no quality figures"
                                          : "; no truth key in the config, so no quality figures") +
    (data.classifier ? `; classifier ${data.classifier.ready ? "deciding" : "learning"} from ` +
      `${data.classifier.learned} confirmed pairs (prequential accuracy ${fmt(data.classifier.prequential_accuracy, 3)})` : "");
}

pollData(render);
