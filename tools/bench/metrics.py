"""`mlstream bench metrics`: the stream app's throughput with per-prediction metrics tracking off and on.

Both modes run in one command, alternating, on the same data: the dataset is produced
first (records and labels), then a real ``mlstream app`` process drains the
backlog; throughput is predictions per second between the first and the last
prediction's ``scored_at``, read back from the predictions topic. The topics
of the benchmark are deleted afterwards.
"""

from __future__ import annotations

import time
from typing import Callable

from mlstream.kafka.clients import registry_client
from mlstream.kafka.reader import read_all
from mlstream.kafka.topics import init, topic_codec
from mlstream.settings import Settings
from producers.datasets import examples, source_name
from producers.feed import KafkaFeedSink, play
from tools.bench.rounds import BenchRun
from tools.demo import app_stats, start_app, stop_app, wait_for, wait_for_app


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
    codec = topic_codec(registry_client(settings), settings, settings.topics.predictions)
    scored = sorted(codec.decode(m.value())["scored_at"].timestamp()
                    for m in read_all(settings, settings.topics.predictions))
    span = scored[-1] - scored[0] if len(scored) > 1 else 0.0
    result = {"predictions": len(scored), "scoring_records_per_second": round(len(scored) / span, 1) if span else None,
              "end_to_end_records_per_second": round(feed.records / wall_s, 1), "wall_seconds": round(wall_s, 2)}
    say(f"  metrics {'on ' if settings.prediction_metrics else 'off'}: {result}")
    return result


def bench_metrics(settings: Settings, dataset: str = "bananas", records: int = 5000, repeat: int = 2,
                  say: Callable[[str], None] = print) -> dict:
    """Alternate off and on ``repeat`` times; the best run of each mode is compared, since on a shared
    machine other work only ever slows a run down."""
    runs: dict[str, list[dict]] = {"off": [], "on": []}
    with BenchRun(settings) as run:
        for i in range(repeat):
            for mode in ("off", "on"):
                s = run.round_settings(f"{mode}{i}", prediction_metrics=(mode == "on"))
                say(f"run {i + 1}/{repeat} metrics {mode}: {records} {dataset} records backlogged, "
                    "then drained by a fresh app")
                runs[mode].append(run_once(s, dataset, records, say))
    best = {mode: max(results, key=lambda r: r["scoring_records_per_second"] or 0) for mode, results in runs.items()}
    off, on = best["off"]["scoring_records_per_second"], best["on"]["scoring_records_per_second"]
    e2e_off, e2e_on = (best[m]["end_to_end_records_per_second"] for m in ("off", "on"))
    return {
        "dataset": dataset, "records": records, "repeat": repeat,
        "metrics_off": best["off"], "metrics_on": best["on"], "runs": runs,
        "scoring_slowdown_percent": round(100 * (1 - on / off), 1) if on and off else None,
        "end_to_end_slowdown_percent": round(100 * (1 - e2e_on / e2e_off), 1),
    }
