"""`mlstream bench metrics`: the stream app's throughput with per-prediction metrics tracking off and on.

Both runs happen in one command on the same data: the dataset is produced
first (records and labels), then a real ``mlstream app`` process drains the
backlog; throughput is predictions per second between the first and the last
prediction's ``scored_at``, read back from the predictions topic. The topics
of the benchmark are deleted afterwards.
"""

from __future__ import annotations

import dataclasses
import socket
import time
import uuid
from typing import Callable

from confluent_kafka.admin import AdminClient

from mlstream.demo import app_stats, start_app, stop_app, wait_for, wait_for_app
from mlstream.serde import TopicCodec, registry_client
from mlstream.settings import Settings, Topics
from mlstream.topic_reader import read_all
from mlstream.topics import init, project_topics
from producers.datasets import examples, source_name
from producers.feed import KafkaFeedSink, play


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_once(settings: Settings, dataset: str, records: int, say: Callable[[str], None]) -> dict:
    init(settings, say=lambda _: None)
    feed = play(examples(dataset), KafkaFeedSink(settings), dataset=dataset, source=source_name(dataset),
                label_delay_s=0.0, limit=records, progress=lambda _: None)
    log_path = settings.state_dir / "logs" / "app.log"
    app = start_app(settings, log_path)
    try:
        wait_for_app(settings, app, log_path)
        started = time.monotonic()

        def drained():
            stats = app_stats(settings)
            return stats if stats and stats["counters"]["records_in"] >= feed.records \
                and stats["counters"]["labels_in"] >= feed.labels and stats["awaiting_label"] == 0 else None

        wait_for(drained, 600, f"the app to drain the backlog (log: {log_path})", poll_s=0.1)
        wall_s = time.monotonic() - started
    finally:
        stop_app(app)
    codec = TopicCodec.for_topic(registry_client(settings.schema_registry_url), settings.topics.predictions, "prediction")
    scored = sorted(codec.decode(m.value())["scored_at"].timestamp()
                    for m in read_all(settings.bootstrap_servers, settings.topics.predictions))
    span = scored[-1] - scored[0] if len(scored) > 1 else 0.0
    result = {"predictions": len(scored), "scoring_records_per_second": round(len(scored) / span, 1) if span else None,
              "end_to_end_records_per_second": round(feed.records / wall_s, 1), "wall_seconds": round(wall_s, 2)}
    say(f"  metrics {'on ' if settings.prediction_metrics else 'off'}: {result}")
    return result


def bench_metrics(settings: Settings, dataset: str = "bananas", records: int = 5000,
                  say: Callable[[str], None] = print) -> dict:
    run = uuid.uuid4().hex[:8]
    results, created = {}, []
    try:
        for mode in ("off", "on"):
            s = dataclasses.replace(settings, topics=Topics(prefix=f"bench-{run}-{mode}.",
                                                           atlas_hook=f"bench-{run}-{mode}.ATLAS_HOOK"),
                                    app_id=f"bench-{run}-{mode}", web_port=_free_port(),
                                    state_dir=settings.state_dir / "bench" / run / mode,
                                    prediction_metrics=(mode == "on"))
            created += [t.name for t in project_topics(s)]
            say(f"run {mode}: {records} {dataset} records backlogged, then drained by a fresh app")
            results[mode] = run_once(s, dataset, records, say)
    finally:
        if created:
            AdminClient({"bootstrap.servers": settings.bootstrap_servers}).delete_topics(created)
    off, on = results["off"]["scoring_records_per_second"], results["on"]["scoring_records_per_second"]
    e2e_off, e2e_on = (results[m]["end_to_end_records_per_second"] for m in ("off", "on"))
    return {
        "dataset": dataset, "records": records, "metrics_off": results["off"], "metrics_on": results["on"],
        "scoring_slowdown_percent": round(100 * (1 - on / off), 1) if on and off else None,
        "end_to_end_slowdown_percent": round(100 * (1 - e2e_on / e2e_off), 1),
    }
