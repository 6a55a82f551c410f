"""The scorer dashboard's memory across restarts, read back from the topics (the Kafka side of ``dashboard.py``).

At start the app reads the last day of its own records (:func:`read_history`): the
aggregate metrics it reports every few seconds (the metrics topic) become the chart
samples, the deploys applied (the deployments topic) the markers, its alerts (the alerts
topic) the alert table. :func:`training_window` reads a build's training records, the
reference its drift panel compares the live features with.
"""

from __future__ import annotations

import json
import re
from typing import Callable

from confluent_kafka import Message

from apps.history import ms_ago, ours, read_reports, since
from apps.scorer.dashboard import REFERENCE_SIZE, deploy_marker, sample_of
from apps.web import WINDOWS
from mlstream.kafka.reader import read_range
from mlstream.kafka.topics import topic_codec
from mlstream.metrics.records import plain_ms
from mlstream.registry.control import APPLIED
from mlstream.registry.records import Build
from mlstream.registry.training import manifest_of
from mlstream.settings import Settings

#: what the dashboard shows of an alert (``labels_judged``: the labels its figure is based on, when the schema has it)
ALERT_FIELDS = ("alert_type", "subject", "detector", "value", "threshold", "records_learned", "labels_judged",
                "message")
TRAINING_READ_TIMEOUT_S = 60.0
BUILD_CRN = re.compile(r"model/(?P<model>[^/]+)/build/(?P<version>[^/]+)$")


def version_of(build_crn: str) -> str:
    """The dashboard's name of a build.

    >>> version_of("crn:mlstream:ml:local:model/phish/build/2")
    'phish v2'
    """
    match = BUILD_CRN.search(build_crn)
    return f"{match['model']} v{match['version']}" if match else build_crn


def samples_from_metrics(aggregates: list[dict]) -> list[dict]:
    """Chart samples from the app's aggregate metric records: one per report, each version's figures.

    >>> rows = [{"model_build_crn": "x/model/m/build/1", "end_timestamp_ms": end, "metrics": {
    ...     "app_predictions_out": out, "app_records_in": out, "rolling_accuracy": 0.9}}
    ...     for end, out in ((5_000, 10.0), (10_000, 60.0))]
    >>> [(s["t"], s["throughput"], s["versions"]) for s in samples_from_metrics(rows)]
    [(5.0, 0.0, {'m v1': {'rolling_accuracy': 0.9}}), (10.0, 10.0, {'m v1': {'rolling_accuracy': 0.9}})]
    """
    reports: dict[int, list[dict]] = {}
    for record in aggregates:
        reports.setdefault(plain_ms(record["end_timestamp_ms"]), []).append(record)
    out, before = [], None
    for end_ms in sorted(reports):
        records = reports[end_ms]
        counters = {name[len("app_"):]: int(value) for name, value in records[0]["metrics"].items()
                    if name.startswith("app_") and isinstance(value, float)}
        t, sent = end_ms / 1000, counters.get("predictions_out", 0)
        # Counters start again from 0 when the app restarts: no throughput across that.
        throughput = (sent - before[1]) / (t - before[0]) if before and sent >= before[1] and t > before[0] else 0.0
        versions = {version_of(r["model_build_crn"]): {k: v for k, v in r["metrics"].items()
                                                        if not k.startswith("app_") and isinstance(v, float)}
                    for r in records}
        out.append(sample_of(t, throughput, counters, versions) | {"live": False})
        before = (t, sent)
    return out


def read_history(settings: Settings, registry, window_s: int = max(WINDOWS)) -> dict:
    """The app's last ``window_s`` seconds as the topics hold them: samples, deploy markers, alerts.

    The keyword arguments of :meth:`apps.scorer.dashboard.LiveHistory.restore`.
    """
    topics, app_id = settings.topics, settings.app_id
    since_ms = ms_ago(window_s)
    aggregates = read_reports(settings, registry, app_id, since_ms)
    alerts_codec = topic_codec(registry, settings, topics.alerts)
    markers = []
    for message in since(settings, topics.deployments, since_ms):
        value = json.loads(message.value())
        if value.get("type") == "outcome" and value.get("result") == APPLIED and value.get("app_id") == app_id:
            markers.append(deploy_marker(value["at_ms"], f"{value['model']} v{value['version']}", value["role"],
                                         value.get("detail", "")))
    alerts = []
    for message in since(settings, topics.alerts, since_ms):
        alert = alerts_codec.decode(message.value())
        if ours(alert["model_deployment_crn"], app_id):
            alerts.append({name: alert.get(name) for name in ALERT_FIELDS} | {
                "raised_at_ms": plain_ms(alert["raised_at"]), "version": version_of(alert["model_build_crn"])})
    return {"samples": samples_from_metrics(aggregates), "markers": sorted(markers, key=lambda m: m["t"]),
            "alerts": sorted(alerts, key=lambda a: a["raised_at_ms"]), "since_ms": since_ms}


def training_window(settings: Settings, build: Build, features: tuple[str, ...],
                    features_of: Callable[[Message], dict]) -> dict:
    """The values of ``features`` in the build's training split (at most REFERENCE_SIZE records, evenly spread).

    ``features_of`` reads a record's features from its message (as the app's feature view does).
    """
    manifest = manifest_of(build)
    train = next(split for split in manifest.splits if split.name == "train")
    messages = read_range(settings, manifest.records_topic,
                          {r.partition: r.start for r in train.records}, {r.partition: r.end for r in train.records},
                          timeout_s=TRAINING_READ_TIMEOUT_S)
    step = max(1, len(messages) // REFERENCE_SIZE)
    values: dict[str, list[float]] = {name: [] for name in features}
    for message in messages[::step]:
        record_features = features_of(message)
        for name in features:
            if isinstance(record_features.get(name), (int, float)):
                values[name].append(float(record_features[name]))
    ranges = ", ".join(f"[{r.partition}] {r.start}..{r.end - 1}" for r in train.records)
    return {"source": f"training window of {build.model} v{build.version}: {manifest.records_topic} {ranges}",
            "values": values}
