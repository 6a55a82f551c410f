"""`mlstream demo`: the whole pipeline on local services, for a bounded time, with a summary.

Steps: start Kafka and the registry, create topics and schemas, start the stream
app, play a dataset (plus a few undecodable messages, to show the dead-letter
path), wait until the app has scored and learned everything, stop it, and read
the figures back from the topics themselves.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests
from confluent_kafka import Producer

from tools import local_services
from mlstream.errors import UserError
from tools import lineage_demo
from mlstream.kafka.serde import registry_client
from mlstream.settings import Settings
from mlstream.kafka.reader import end_offsets, read_range
from mlstream.kafka.topics import init, topic_codec
from producers.datasets import DATASETS, examples, source_name
from producers.feed import KafkaFeedSink, play

ENDLESS_DEFAULT_RECORDS = 5000
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
    """Wait until the app answers on /stats/; fail at once, with its last words, if it died."""

    def answering():
        if process.poll() is not None:
            raise exited("the stream app", process, log_path)
        return app_stats(settings)

    return wait_for(answering, timeout_s, f"the stream app's /stats/ (log: {log_path})")


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


def run_demo(settings: Settings, *, dataset: str, records: int | None, rate: float, label_delay_s: float) -> dict:
    if records is None and DATASETS[dataset][1]:
        records = ENDLESS_DEFAULT_RECORDS
    topics = settings.topics
    total = 6
    started = time.monotonic()

    step(1, total, "local services (Kafka, Schema Registry)")
    local_services.up(settings)
    step(2, total, "topics and schemas")
    init(settings)
    lineage_demo.prepare(settings, dataset)

    step(3, total, "stream app")
    app_log = settings.state_dir / "logs" / "app.log"
    watched = [topics.predictions, topics.dead_letters, topics.metrics, topics.atlas_hook]
    before = {t: end_offsets(settings.bootstrap_servers, t) for t in watched}
    app = start_app(settings, app_log)
    try:
        first = wait_for_app(settings, app, app_log)
        learned_before = first["model"]["n_learned"]
        print(f"app up on http://localhost:{settings.web_port}/stats/ (log {app_log}); model "
              f"{first['model']['name']} v{first['model']['version']} has learned {learned_before} labels so far")

        step(4, total, f"feed: {dataset} ({DATASETS[dataset][0]})")
        feed = play(examples(dataset), KafkaFeedSink(settings), dataset=dataset, source=source_name(dataset),
                    rate=rate, label_delay_s=label_delay_s, limit=records)
        producer = Producer({"bootstrap.servers": settings.bootstrap_servers})
        for value in UNDECODABLE_VALUES:
            producer.produce(topics.records, key=b"garbage", value=value)
        producer.flush(10)
        print(f"sent {len(UNDECODABLE_VALUES)} undecodable messages to {topics.records} (they must be dead-lettered)")

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
    finally:
        stop_app(app)
    lineage = lineage_demo.finish(settings)

    step(6, total, "reading the results back from Kafka")
    after = {t: end_offsets(settings.bootstrap_servers, t) for t in watched}
    registry = registry_client(settings.schema_registry_url)
    predictions_codec = topic_codec(registry, settings, topics.predictions)
    predictions = [predictions_codec.decode(m.value()) for m in
                   read_range(settings.bootstrap_servers, topics.predictions, before[topics.predictions], after[topics.predictions])]
    dead_letters = sum(after[topics.dead_letters].values()) - sum(before[topics.dead_letters].values())
    metrics_messages = sum(after[topics.metrics].values()) - sum(before[topics.metrics].values())
    lineage_messages = sum(after[topics.atlas_hook].values()) - sum(before[topics.atlas_hook].values())
    scored_at = [p["scored_at"].timestamp() for p in predictions]
    span = (max(scored_at) - min(scored_at)) if len(scored_at) > 1 else 0.0
    figures = final["figures"]
    summary = {
        "dataset": dataset,
        "records_produced": feed.records,
        "labels_produced": feed.labels,
        "feed_records_per_second": round(feed.records_per_second, 1),
        "records_scored": len(predictions),
        "records_learned": final["model"]["n_learned"] - learned_before,
        "dead_lettered": dead_letters,
        "app_records_per_second": round(len(predictions) / span, 1) if span else None,
        "accuracy": figures.get("accuracy"),
        "rolling_accuracy": figures.get("rolling_accuracy"),
        "latency_p50_ms": figures.get("latency_p50_ms"),
        "latency_p99_ms": figures.get("latency_p99_ms"),
        "metrics_records": metrics_messages,
        "lineage_messages": lineage_messages,
        "model": f"{final['model']['name']} v{final['model']['version']}",
        "versions": final.get("versions", {}),
        "alerts": final["counters"].get("alerts", 0),
        **lineage,
        "seconds": round(time.monotonic() - started, 1),
    }
    print_summary(summary, settings, app_log)
    return summary


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
        ("latency", f"p50 {fmt(s['latency_p50_ms'], '{:.2f}')} ms, p99 {fmt(s['latency_p99_ms'], '{:.2f}')} ms"),
        ("metrics records", f"{s['metrics_records']} on {settings.topics.metrics}"),
        ("lineage messages", f"{s['lineage_messages']} on {settings.topics.atlas_hook}"),
        ("took", f"{s['seconds']:.0f} s"),
    ]
    for name, value in rows:
        print(f" {name:18} {value}")
    print(f" live metrics per model version ({s['alerts']} alerts on {settings.topics.alerts}):")
    for version, f in s["versions"].items():
        quality = ", ".join(f"{name} {f[name]:.3f}" for name in ("rolling_accuracy", "log_loss", "roc_auc", "mae", "rmse")
                            if name in f)
        print(f"   {version:28} {quality}, label coverage {f.get('label_coverage', 0):.2f}, "
              f"drifts {f.get('drifts_detected', 0):.0f}")
    print("\nWhere to look next:")
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
