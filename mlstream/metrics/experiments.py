"""Offline experiments: several model specs over a replay of a topic's offset range, tracked
with the same metrics API as the live app, and compared side by side.

Each spec is one run: a row opened with its parameters (spec, topic, offset
range), then its prequential figures added with ``track_metric``, as a CML
experiment would. Runs of an experiment share the deployment
``crn:mlstream:ml:local:model/<spec>/deployment/experiment-<name>``.
"""

from __future__ import annotations

import time
from typing import Callable

import models
from mlstream.errors import UserError
from mlstream.features.view import RecordMismatch, load_feature_view
from mlstream.kafka.clients import registry_client
from mlstream.kafka.reader import read_all, read_range, watermarks
from mlstream.kafka.serde import UndecodableValue
from mlstream.kafka.topics import input_codec
from mlstream.metrics.sink import MetricsSink
from mlstream.metrics.store import MetricsStore
from mlstream.metrics.tracking import MetricsTracker
from mlstream.scoring.monitoring import ModelMonitor
from mlstream.scoring.online_model import OnlineModel
from mlstream.settings import Settings

EXPERIMENT_VERSION = "experiment"
COMPARED = ("records_learned", "accuracy", "rolling_accuracy", "log_loss", "roc_auc", "mae", "rmse", "seconds")


def deployment_name(experiment: str) -> str:
    return f"experiment-{experiment}"


def replay(settings: Settings, max_records: int | None = None) -> tuple[list[tuple[dict, object]], dict]:
    """The records topic's current offset range joined with labels, in event-time order, both read
    through the feature view ``MLSTREAM_FEATURE_VIEW`` names (records and labels that do not fit it are left out)."""
    view = load_feature_view(settings)
    registry = registry_client(settings)
    start, end = watermarks(settings, view.records_topic)
    if start == end:
        raise UserError(f"{view.records_topic} is empty: produce some records first (mlstream produce)")
    records_codec = input_codec(registry, settings, view.records_topic)
    labels_codec = input_codec(registry, settings, view.labels_topic)
    labels = {}
    for message in read_all(settings, view.labels_topic):
        try:
            record_id, label, _ = view.label_from(labels_codec.decode(message.value()), message.key())
        except (UndecodableValue, RecordMismatch):
            continue
        labels[record_id] = label
    records = []
    for message in read_range(settings, view.records_topic, start, end):
        try:
            record = view.record_from(records_codec.decode(message.value()), message.key())
        except (UndecodableValue, RecordMismatch):
            continue
        if record["id"] in labels:
            records.append((record["event_time"], record["features"], labels[record["id"]]))
    records.sort(key=lambda r: r[0])
    examples = [(features, label) for _, features, label in records[:max_records]]
    offsets = ",".join(f"p{p}:{start[p]}-{o}" for p, o in sorted(end.items()))
    return examples, {"topic": view.records_topic, "offsets": offsets, "records": float(len(examples)),
                      "feature_view": view.ref}


def run_spec(spec: str, examples: list, tracker: MetricsTracker, params: dict) -> dict:
    run_uuid = tracker.start_run({"spec": spec, **params})
    model = OnlineModel(models.build(spec), spec, EXPERIMENT_VERSION)
    monitor = ModelMonitor(spec, EXPERIMENT_VERSION)
    started = time.perf_counter()
    for features, label in examples:
        prediction = model.predict(features)
        monitor.on_outcome(prediction.label, label, 0.0, score=prediction.score)
        model.learn(features, label)
    figures = monitor.figures() | {"seconds": time.perf_counter() - started}
    for name in COMPARED:
        if name in figures:
            tracker.track_metric(name, figures[name])
    return {"run": run_uuid, "spec": spec, **figures}


def run_experiment(settings: Settings, name: str, specs: list[str], sink: MetricsSink,
                   max_records: int | None = None, say: Callable[[str], None] = print) -> list[dict]:
    for spec in specs:
        try:
            models.check(spec)
        except ValueError as err:
            raise UserError(str(err)) from None
    examples, params = replay(settings, max_records)
    say(f"replaying {len(examples)} labelled records of {params['topic']} ({params['offsets']})")
    results = []
    for spec in specs:
        tracker = MetricsTracker(sink, spec, EXPERIMENT_VERSION, deployment_name(name))
        result = run_spec(spec, examples, tracker, params)
        say(f"  {spec}: " + ", ".join(f"{k}={result[k]:.4g}" for k in COMPARED if k in result))
        results.append(result)
    sink.flush()
    return results


def compare(store: MetricsStore, name: str | None) -> list[dict]:
    """Runs of experiment ``name`` (all experiments if None), oldest first, one dict each."""
    suffix = f"/deployment/{deployment_name(name)}" if name else "/deployment/experiment-"
    runs = []
    for row in store.read():
        crn = row["modelDeploymentCrn"]
        if row["predictionUuid"] and ((crn.endswith(suffix)) if name else suffix in crn):
            runs.append({"experiment": crn.rsplit("/deployment/experiment-", 1)[-1], "run": row["predictionUuid"],
                         **row["metrics"]})
    return runs


def format_comparison(runs: list[dict]) -> str:
    if not runs:
        return "(no experiment runs: mlstream experiments run --name NAME --spec ...)"
    columns = [c for c in COMPARED if any(c in r for r in runs)]
    head = f"{'experiment':14} {'run':8} {'spec':22} {'records':>8} " + " ".join(f"{c:>16}" for c in columns)
    lines = [head]
    for r in runs:
        values = " ".join(f"{r[c]:>16.4f}" if isinstance(r.get(c), float) else f"{'-':>16}" for c in columns)
        lines.append(f"{r['experiment']:14} {r['run'][:8]:8} {r.get('spec', '?'):22} {r.get('records', 0):>8.0f} {values}")
    return "\n".join(lines)
