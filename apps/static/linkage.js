// The linkage app's live dashboard: polls /dashboard/data.json for the chosen window every second and
// redraws the charts of charts.js.
"use strict";

const QUALITY = [["f1", "F1"], ["precision", "precision"], ["recall", "recall"],
                 ["pairs_completeness", "pairs completeness"]];
const BAD_INPUT = {dead_letters: "dead-lettered (every reason)", duplicate_records: "exact repeats skipped",
                   unknown_source: "unknown source", empty_records: "empty records",
                   records_without_blocking_keys: "no blocking key (linked to nothing)"};

function render(data, range) {
  const samples = data.samples, times = samples.map(s => s.t);
  const series = (name, pick) => ({name, values: samples.map(pick)});
  chart("chart-throughput", times, [series("records/s", s => s.throughput)], {range});
  chart("chart-latency", times, [series("p50 ms", s => s.end_to_end_p50_ms),
                                 series("p99 ms", s => s.end_to_end_p99_ms)], {range});
  chart("chart-quality", times, QUALITY.map(([key, name]) => series(name, s => s.quality ? s.quality[key] : null)),
        {range});
  chart("chart-entities", times, [series("entities", s => s.entities), series("links", s => s.links)], {range});
  const last = samples[samples.length - 1];
  const bad = last ? last.bad_input : {};
  document.querySelector("#bad-input tbody").innerHTML = Object.entries(BAD_INPUT)
    .map(([key, label]) => `<tr><td>${label}</td><td>${bad[key] || 0}</td></tr>`).join("");
  document.getElementById("bad-input").setAttribute("data-rows", String(Object.keys(BAD_INPUT).length));
  document.querySelector("#merges tbody").innerHTML = data.merges.slice().reverse().map(m =>
    `<tr><td>${clockTime(m.t_ms / 1000)}</td><td>${m.entity_id}</td>` +
    `<td>${m.merged_from.join(", ")}</td><td>${m.records}</td></tr>`).join("");
  document.getElementById("merges").setAttribute("data-rows", String(data.merges.length));
  if (!last) {
    document.getElementById("status").textContent = "waiting for the first sample";
    return;
  }
  const q = last.quality || {};
  const figures = [["records in since the app started", last.records_in, 0],
                   ["records linked per second", last.throughput, 0],
                   ["p99 latency of the last second, ms", last.end_to_end_p99_ms, 1],
                   ["entities so far", last.entities, 0],
                   ["F1", q.f1, 4], ["precision", q.precision, 4], ["recall", q.recall, 4],
                   ["pairs completeness", q.pairs_completeness, 4], ["reduction ratio", q.reduction_ratio, 5]];
  document.getElementById("figures").innerHTML = figures.map(([name, value, digits]) =>
    `<div class="figure"><b>${digits ? fixed(value, digits) : count(value)}</b><span>${name}</span></div>`).join("");
  const restored = data.restored;
  const history = !restored.done ? "reading the history back"
    : restored.error ? `history not read back (${restored.error})`
    : `${count(restored.samples)} samples from before this process read back`;
  const quality = last.quality ? ""
    : data.config.truth ? "; no record linked yet, so no quality figures"
    : "; no truth key in the config, so no quality figures";
  const classifier = !data.classifier ? ""
    : `; classifier ${data.classifier.ready ? "deciding" : "learning"} from ${data.classifier.learned} confirmed ` +
      `pairs (prequential accuracy ${fixed(data.classifier.prequential_accuracy, 3)})`;
  document.getElementById("status").textContent =
    `updated ${clockTime(data.now_ms / 1000)}: config ${data.config.name} ${data.config.version} ` +
    `(${data.config.mode}), ${count(last.records_in)} records in, ${count(last.links_out)} link events, ` +
    `model fitted ${last.model_fits} times; ${history}${quality}${classifier}`;
}

pollData(render);
