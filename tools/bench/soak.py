"""`mlstream bench soak`: the app's memory over a long steady feed, sampled every few seconds.

The real ``mlstream app`` (everything on: per-prediction metrics and their materializer) runs
on fresh topics of its own while the project's feed plays an endless dataset at ``rate``
records a second, each label a second after its record. Every ``interval_s`` the app's
resident memory is read from ``/proc`` (its main process, and with its children: the metrics
materializer), beside how many predictions it has made (its ``/stats/``). The run lasts
``minutes`` and at least until the app has made ``records`` predictions, then reports:

- ``rss_mb_after_records``: the main process's RSS at the first sample after ``records``
  predictions;
- ``growth_percent``: how much the main process's RSS grew from the first sample after
  ``warm_up_s`` (models, caches and join state filling up) to the last sample of the timed
  window;
- every sample, so a slow leak shows as a slope, not only as an end figure.

A figure, never a verdict: the goals are in docs/data-plane.md, and the test runs it for
seconds only to show it works.
"""

from __future__ import annotations

import itertools
import threading
import time
from pathlib import Path

from mlstream.errors import UserError
from mlstream.settings import Settings
from producers.datasets import DATASETS, examples, source_name
from producers.feed import KafkaFeedSink, play
from tools.bench.rounds import BenchRun, init_round, machine_line, peak_rss_mb, process_tree, rss_mb
from tools.bench.scorer import STALL_S, Say
from tools.demo import app_stats, exited, start_app, stop_app, wait_for_app

LABEL_DELAY_S = 1.0


def bench_soak(settings: Settings, dataset: str = "agrawal-drift", minutes: float = 10.0,
               records: int = 1_000_000, rate: float = 2000.0, interval_s: float = 10.0, warm_up_s: float = 60.0,
               say: Say = print) -> dict:
    if minutes <= 0 or records < 1 or rate <= 0 or interval_s <= 0 or warm_up_s < 0:
        raise UserError("--minutes, --records, --rate and --interval must be positive, --warm-up not negative")
    if not DATASETS[dataset][1]:
        raise UserError(f"dataset {dataset} ends; a soak needs an endless one "
                        f"({', '.join(name for name, (_, endless) in DATASETS.items() if endless)})")
    window_s = minutes * 60
    with BenchRun(settings) as run:
        round_settings = run.round_settings("soak", prediction_metrics=True)
        init_round(round_settings)
        log_path = round_settings.state_dir / "logs" / "app.log"
        process = start_app(round_settings, log_path)
        stop = threading.Event()
        try:
            wait_for_app(round_settings, process, log_path)
            feed = threading.Thread(target=play, name="soak-feed", daemon=True, args=(
                itertools.takewhile(lambda _: not stop.is_set(), examples(dataset)), KafkaFeedSink(round_settings)),
                kwargs={"dataset": dataset, "source": source_name(dataset), "rate": rate,
                        "label_delay_s": LABEL_DELAY_S, "progress": lambda _: None})
            feed.start()
            say(f"soak: feed at {rate:g} records/s; sampling the app's memory every {interval_s:g}s for "
                f"{minutes:g} min and until {records:,} predictions")
            samples = sample(round_settings, process, log_path, window_s, records, interval_s, say)
            peak = peak_rss_mb(process.pid)
        finally:
            stop.set()
            stop_app(process)
    after = next((s for s in samples if s["predictions"] >= records), None)
    timed = [s for s in samples if warm_up_s <= s["t_s"] <= window_s]
    growth = (round(100 * (timed[-1]["rss_mb"] - timed[0]["rss_mb"]) / timed[0]["rss_mb"], 2)
              if len(timed) > 1 else None)
    return {"dataset": dataset, "model": settings.model, "rate": rate, "minutes": minutes, "records": records,
            "interval_s": interval_s, "warm_up_s": warm_up_s, **run.machine(),
            "predictions": samples[-1]["predictions"], "seconds": samples[-1]["t_s"],
            "rss_mb_after_records": after["rss_mb"] if after else None,
            "tree_rss_mb_after_records": after["tree_rss_mb"] if after else None,
            "growth_percent": growth, "peak_rss_mb": peak, "samples": samples}


def sample(settings: Settings, process, log_path: Path, window_s: float, records: int, interval_s: float,
           say: Say) -> list[dict]:
    """A sample every ``interval_s`` until ``window_s`` has passed and the app made ``records`` predictions."""
    samples: list[dict] = []
    started = moved = time.monotonic()
    while True:
        time.sleep(max(0.0, started + (len(samples) + 1) * interval_s - time.monotonic()))
        if process.poll() is not None:
            raise exited("the stream app", process, log_path)
        stats = app_stats(settings)
        predictions = stats["counters"]["predictions_out"] if stats else (samples[-1]["predictions"] if samples
                                                                            else 0)
        now = time.monotonic()
        if not samples or predictions > samples[-1]["predictions"]:
            moved = now
        samples.append({"t_s": round(now - started, 1), "predictions": predictions, "rss_mb": rss_mb(process.pid),
                        "tree_rss_mb": round(sum(rss_mb(pid) for pid in process_tree(process.pid)), 1)})
        say(f"  {samples[-1]}")
        if now - started >= window_s and predictions >= records:
            return samples
        if now - moved > STALL_S:
            raise UserError(f"the app made no prediction for {STALL_S:.0f}s, at {predictions:,} "
                            f"(log: {log_path})")


def format_table(result: dict) -> str:
    def number(value, pattern: str) -> str:
        return "-" if value is None else pattern.format(value)

    lines = [f"{'t s':>8} {'predictions':>12} {'RSS MB':>8} {'with children MB':>17}"]
    lines += [f"{s['t_s']:>8.0f} {s['predictions']:>12,} {s['rss_mb']:>8.1f} {s['tree_rss_mb']:>17.1f}"
              for s in result["samples"]]
    lines.append(f"after {result['records']:,} predictions: RSS {number(result['rss_mb_after_records'], '{:.0f}')} MB "
                 f"({number(result['tree_rss_mb_after_records'], '{:.0f}')} MB with the materializer); growth from "
                 f"{result['warm_up_s']:g}s to {result['minutes']:g} min: "
                 f"{number(result['growth_percent'], '{:+.1f}')}%; peak {result['peak_rss_mb']:.0f} MB")
    lines.append(f"{result['dataset']} at {result['rate']:g} records/s, labels {LABEL_DELAY_S:g}s later, model "
                 f"{result['model']}, everything on")
    lines.append(machine_line(result, "the app takes longer to reach the records"))
    return "\n".join(lines)
