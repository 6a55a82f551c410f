"""`mlstream demo`: the whole pipeline on local services, for a bounded time, with a summary.

Steps: start Kafka and the registry, create topics and schemas, start the stream
app, play a dataset or a user's CSV file (plus a few undecodable messages, to show the dead-letter
path), wait until the app has scored and learned everything, stop it, and read
the figures back from the topics themselves.

The feed is paced by time, as a live source is: ``DEMO_RATE`` records a second,
each label ``DEMO_LABEL_DELAY_S`` after its record, so most predictions come
from a model that has learned from the labels before them. A gate on the
labels the app has learned backs the pace up: on a loaded machine, where the
app may start consuming late or fall behind, the feed waits rather than pile
up records a model will score before it learned anything, so the accuracy
does not depend on the machine's load.

A CSV file (``mlstream demo --csv``) is read and checked before anything starts; after
``init`` its topic, record schema and feature view are put in place, and the app starts
with that view (``MLSTREAM_FEATURE_VIEW``), so the undecodable messages go to the CSV's
records topic and the summary reads the same figures.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from mlstream.errors import UserError
from mlstream.kafka import clients
from mlstream.kafka.reader import end_offsets, read_range
from mlstream.kafka.topics import init, topic_codec
from mlstream.profiles import LOCAL
from mlstream.settings import Settings
from producers.csv_feed import CsvFeed, play_csv, prepare_csv
from producers.datasets import DATASETS, examples, source_name
from producers.feed import FeedStats, KafkaFeedSink, LearningGate, play
from tools import lineage_demo, local_services

ENDLESS_DEFAULT_RECORDS = 5000
DEMO_RATE = 50.0  # records/s: Phishing's 1,250 records in 25 s
DEMO_LABEL_DELAY_S = 0.5  # 25 records in flight: the model is that many labels behind
#: The feed waits while the app has learned all but this many of the records sent.
MAX_LABELS_BEHIND = 50
#: The summary's accuracy over time: one figure per this many records, in feed order.
ACCURACY_WINDOW = 250
#: Values that are not Confluent-framed Avro, or name a schema id no registry has.
UNDECODABLE_VALUES = [b"not avro at all", b"\x00\x7f\xff\xff\xfe" + b"\x02id"]


def step(n: int, total: int, text: str) -> None:
    print(f"\n== [{n}/{total}] {text}", flush=True)


def start_app(settings: Settings, log_path: Path) -> subprocess.Popen:
    return start_process([sys.executable, "-m", "tools", "app"], settings, log_path)


def start_process(command: list[str], settings: Settings, log_path: Path, env: dict[str, str] | None = None
                  ) -> subprocess.Popen:
    """Start ``command`` with these settings in its environment (plus ``env``), its output to ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = log_path.open("ab")
    return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                            env=os.environ | settings.to_env() | (env or {}), start_new_session=True)


def app_stats(settings: Settings) -> dict | None:
    try:
        response = requests.get(f"http://localhost:{settings.web_port}/stats/", timeout=2)
        return response.json() if response.ok else None
    except requests.RequestException:
        return None


def wait_for_app(settings: Settings, process: subprocess.Popen, log_path: Path, timeout_s: float = 120) -> dict:
    """Wait until the app answers on /stats/ and its data plane has joined its consumer group; fail at
    once, with its last words, if it died."""

    def ready():
        if process.poll() is not None:
            raise exited("the stream app", process, log_path)
        stats = app_stats(settings)
        return stats if stats and stats.get("data_plane", {}).get("joined") else None

    return wait_for(ready, timeout_s, f"the stream app's data plane to join its group (log: {log_path})")


def exited(what: str, process: subprocess.Popen, log_path: Path) -> UserError:
    """The error for a process that died: its exit code and last words."""
    return UserError(f"{what} exited with code {process.returncode}; {log_tail(log_path)}")


def log_tail(log_path: Path, lines: int = 15) -> str:
    tail = log_path.read_text(errors="replace").strip().splitlines()[-lines:]
    return f"end of {log_path}:\n" + "\n".join(tail)


def wait_for(predicate, timeout_s: float, what: str, poll_s: float = 0.5):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(poll_s)
    raise UserError(f"timed out after {timeout_s:.0f}s waiting for {what}")


def stop_app(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def run_demo(settings: Settings, *, dataset: str, records: int | None, rate: float, label_delay_s: float,
             csv: CsvFeed | None = None) -> dict:
    """The demo on ``dataset``, or on ``csv`` (a user's file, read and checked) when given."""
    if csv is None and records is None and DATASETS[dataset][1]:
        records = ENDLESS_DEFAULT_RECORDS
    total = 6
    started = time.monotonic()

    step(1, total, "local services (Kafka, Schema Registry)")
    local_services.up(settings)
    step(2, total, "topics and schemas")
    init(settings)
    records_topic, order = settings.topics.records, None
    if csv is not None:
        prepared = prepare_csv(settings, csv)
        settings = dataclasses.replace(settings, feature_view=prepared.view_name)
        records_topic, order = prepared.topic, [rid for rid, _, _ in csv.rows]
    lineage_demo.prepare(settings, None if csv else dataset, records_topic=records_topic)
    topics = settings.topics

    step(3, total, "stream app")
    app_log = settings.state_dir / "logs" / "app.log"
    watched = [topics.predictions, topics.labels, topics.dead_letters, topics.metrics, topics.atlas_hook]
    before = {t: end_offsets(settings, t) for t in watched}
    app = start_app(settings, app_log)
    try:
        first = wait_for_app(settings, app, app_log)
        learned_before = first["model"]["n_learned"]
        print(f"app up on http://localhost:{settings.web_port}/stats/ (log {app_log}); model "
              f"{first['model']['name']} v{first['model']['version']} has learned {learned_before} labels so far")

        set_up_s = time.monotonic() - started
        print(f"set-up took {set_up_s:.0f} s (services, topics, lineage service, app start)")

        def learned() -> int | None:
            if app.poll() is not None:  # the feed would wait for it for ever
                raise exited("the stream app", app, app_log)
            stats = app_stats(settings)
            return None if stats is None else stats["model"]["n_learned"] - learned_before

        gate = LearningGate(learned, behind=MAX_LABELS_BEHIND)
        streamed_from = time.monotonic()
        feed: FeedStats
        if csv is None:
            step(4, total, f"feed: {dataset} ({DATASETS[dataset][0]}), {rate:g} records/s, labels "
                           f"{label_delay_s:g} s later")
            feed = play(examples(dataset), KafkaFeedSink(settings), dataset=dataset, source=source_name(dataset),
                        rate=rate, label_delay_s=label_delay_s, limit=records, ready=gate)
        else:
            step(4, total, f"feed: {csv.path} ({len(csv.rows)} rows to {records_topic}, feature view "
                           f"{prepared.view_ref}), {rate:g} records/s, labels {label_delay_s:g} s later")
            feed = play_csv(settings, prepared, rate=rate, label_delay_s=label_delay_s, limit=records,
                            ready=gate).stats
        if feed.held_back_s:
            print(f"the feed waited {feed.held_back_s:.1f} s in all for the app, which was more than "
                  f"{MAX_LABELS_BEHIND} labels behind")
        producer = clients.producer(settings)
        for value in UNDECODABLE_VALUES:
            producer.produce(records_topic, key=b"garbage", value=value)
        producer.flush(10)
        print(f"sent {len(UNDECODABLE_VALUES)} undecodable messages to {records_topic} (they must be dead-lettered)")

        step(5, total, "waiting for the app to score and learn everything")
        expected_in = feed.records + len(UNDECODABLE_VALUES)

        def caught_up():
            stats = app_stats(settings)
            if stats is None:
                return None
            c = stats["counters"]
            done = c["records_in"] >= expected_in and c["labels_in"] >= feed.labels and stats["awaiting_label"] == 0
            return stats if done else None

        last_shown = [0.0]

        def caught_up_with_progress():
            stats = caught_up()
            if stats is None and time.monotonic() - last_shown[0] > 2:
                last_shown[0] = time.monotonic()
                current = app_stats(settings) or {"counters": {}}
                print(f"app: {current['counters']}", flush=True)
            return stats

        wait_for(caught_up_with_progress, 300, "the app to catch up", poll_s=0.25)
        time.sleep(6)  # one more metrics interval, so the last window is on the metrics topic
        final = app_stats(settings)
        streamed_s = time.monotonic() - streamed_from
    finally:
        stop_app(app)
    lineage = lineage_demo.finish(settings, records_topic=records_topic)

    step(6, total, "reading the results back from Kafka")
    after = {t: end_offsets(settings, t) for t in watched}
    registry = clients.registry_client(settings)
    predictions_codec = topic_codec(registry, settings, topics.predictions)
    predictions = [predictions_codec.decode(m.value()) for m in
                   read_range(settings, topics.predictions, before[topics.predictions], after[topics.predictions])]
    labels_codec = topic_codec(registry, settings, topics.labels)
    labels = {label["id"]: label["label"] for label in (labels_codec.decode(m.value()) for m in read_range(
        settings, topics.labels, before[topics.labels], after[topics.labels]))}
    # Counted by reading, not by offsets: the scorer writes in transactions, whose commit markers take offsets too.
    dead_letters = len(read_range(settings, topics.dead_letters, before[topics.dead_letters],
                                  after[topics.dead_letters]))
    metrics_messages = sum(after[topics.metrics].values()) - sum(before[topics.metrics].values())
    lineage_messages = sum(after[topics.atlas_hook].values()) - sum(before[topics.atlas_hook].values())
    scored_at = [p["scored_at"].timestamp() for p in predictions]
    span = (max(scored_at) - min(scored_at)) if len(scored_at) > 1 else 0.0
    figures = final["figures"]
    summary = {
        "dataset": dataset if csv is None else str(csv.path),
        **({} if csv is None else {"records_topic": records_topic, "feature_view": prepared.view_ref,
                                   "malformed_rows": len(csv.malformed)}),
        "records_produced": feed.records,
        "labels_produced": feed.labels,
        "feed_records_per_second": round(feed.records_per_second, 1),
        "records_scored": len(predictions),
        "records_learned": final["model"]["n_learned"] - learned_before,
        "dead_lettered": dead_letters,
        "app_records_per_second": round(len(predictions) / span, 1) if span else None,
        "accuracy": figures.get("accuracy"),
        "rolling_accuracy": figures.get("rolling_accuracy"),
        f"accuracy_per_{ACCURACY_WINDOW}": accuracy_per_window(predictions, labels, ACCURACY_WINDOW, order),
        "latency_p50_ms": figures.get("latency_p50_ms"),
        "latency_p99_ms": figures.get("latency_p99_ms"),
        "metrics_records": metrics_messages,
        "lineage_messages": lineage_messages,
        "model": f"{final['model']['name']} v{final['model']['version']}",
        "versions": final.get("versions", {}),
        "alerts": final["counters"].get("alerts", 0),
        **lineage,
        "set_up_seconds": round(set_up_s, 1),
        "stream_seconds": round(streamed_s, 1),
        "feed_held_back_seconds": round(feed.held_back_s, 1),
        "seconds": round(time.monotonic() - started, 1),
    }
    print_summary(summary, settings, app_log)
    return summary


def accuracy_per_window(predictions: list[dict], labels: dict[str, object], window: int,
                        order: list[str] | None = None) -> list[float]:
    """Accuracy of each ``window`` labelled predictions in feed order, the last maybe shorter: the order of
    ``order``'s record ids (a CSV's rows), else of the record ids themselves (a dataset's sort so).

    >>> predictions = [{"record_id": f"d-{i}", "predicted_label": i % 3 != 0} for i in range(5)]
    >>> accuracy_per_window(predictions, {f"d-{i}": True for i in range(5)}, window=2)
    [0.5, 0.5, 1.0]
    >>> accuracy_per_window(predictions, {f"d-{i}": True for i in range(5)}, window=2,
    ...                     order=["d-1", "d-2", "d-4", "d-0", "d-3"])
    [1.0, 0.5, 0.0]
    """
    position = {rid: i for i, rid in enumerate(order)} if order is not None else None
    in_order = sorted(predictions, key=lambda p: p["record_id"] if position is None
                      else position.get(p["record_id"], len(position)))
    judged = [p["predicted_label"] == labels[p["record_id"]] for p in in_order if p["record_id"] in labels]
    return [round(sum(part) / len(part), 3) for part in (judged[i:i + window] for i in range(0, len(judged), window))]


def print_summary(s: dict, settings: Settings, app_log: Path) -> None:
    def fmt(value, pattern="{:.3f}"):
        return "n/a" if value is None else pattern.format(value)

    print("\n" + "=" * 64)
    print(f" mlstream demo summary: {s['dataset']} through {s['model']}")
    print("=" * 64)
    rows = [
        ("records produced", f"{s['records_produced']} (+ labels {s['labels_produced']})"),
        ("records scored", f"{s['records_scored']} predictions on {settings.topics.predictions}"),
        ("records learned", f"{s['records_learned']} labels joined and learned"),
        ("dead-lettered", f"{s['dead_lettered']} on {settings.topics.dead_letters}"),
        ("feed throughput", f"{s['feed_records_per_second']:.0f} records/s"),
        ("app throughput", fmt(s["app_records_per_second"], "{:.0f} records/s")),
        ("accuracy", f"{fmt(s['accuracy'])} prequential, {fmt(s['rolling_accuracy'])} over the last 500"),
        (f"  per {ACCURACY_WINDOW} records", " ".join(f"{a:.3f}" for a in s[f"accuracy_per_{ACCURACY_WINDOW}"])
         + "  (in feed order: the model learns as labels arrive)"),
        ("latency", f"p50 {fmt(s['latency_p50_ms'], '{:.2f}')} ms, p99 {fmt(s['latency_p99_ms'], '{:.2f}')} ms"),
        ("metrics records", f"{s['metrics_records']} on {settings.topics.metrics}"),
        ("lineage messages", f"{s['lineage_messages']} on {settings.topics.atlas_hook}"),
        ("took", f"{s['seconds']:.0f} s: set-up {s['set_up_seconds']:.0f} s, stream {s['stream_seconds']:.0f} s, "
                 f"the rest training the demo's build and reading back"),
    ]
    if "feature_view" in s:  # a CSV's
        rows.insert(1, ("feature view", f"{s['feature_view']} reading {s['records_topic']} "
                                        f"({s['malformed_rows']} malformed rows skipped)"))
    for name, value in rows:
        print(f" {name:18} {value}")
    print(f" live metrics per model version ({s['alerts']} alerts on {settings.topics.alerts}):")
    for version, f in s["versions"].items():
        quality = ", ".join(f"{name} {f[name]:.3f}" for name in ("rolling_accuracy", "log_loss", "roc_auc", "mae", "rmse")
                            if name in f)
        print(f"   {version:28} {quality}, label coverage {f.get('label_coverage', 0):.2f}, "
              f"drifts {f.get('drifts_detected', 0):.0f}")
    print("\nWhere to look next:")
    if settings.profile != LOCAL:
        print(f"  (these ran on profile {settings.profile}: export MLSTREAM_PROFILE={settings.profile}, or put "
              f"--profile {settings.profile} after 'mlstream')")
    print("  mlstream status                 local services, their URLs and logs")
    print(f"  {app_log}   the stream app's log")
    print("  mlstream app                    run the app yourself; http://localhost:"
          f"{settings.web_port}/stats/ shows its figures")
    print(f"  http://localhost:{settings.web_port}/dashboard/   live charts while the app runs; /metrics for Prometheus")
    print(f"  mlstream models show {s['build']}   the model build the demo trained: deploy it, roll back to it")
    print("  mlstream metrics read --limit 5  CML-style rows (read_metrics) from the metrics store")
    print("  mlstream produce --dataset sea-drift --records 20000 --rate 500   a drifting feed")
    print("  mlstream demo rollback          a bad build caught on a live stream, rolled back, rebuilt, promoted")
    print("  mlstream down                   stop Kafka, the registry and the lineage service")
