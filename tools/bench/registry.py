"""``mlstream models bench``: how long a redeploy and a rebuild take, beside their baselines, in one run.

- **redeploy**: from the deploy command to the first prediction of the new build on the
  predictions topic, for a few swaps between two builds on a live feed; the baseline is
  what a restart-based deploy costs: starting the app until its first prediction.
- **rebuild**: training a build again from its recorded offsets, per 100k records; the
  baseline is the original build in the same run (it read the same topics).

Runs on topics of its own (a fresh prefix) against the local services.
"""

from __future__ import annotations

import dataclasses
import itertools
import statistics
import threading
import time

from mlstream.kafka.clients import registry_client
from mlstream.kafka.reader import end_offsets, read_range
from mlstream.kafka.serde import epoch_ms
from mlstream.kafka.topics import init, topic_codec
from mlstream.registry.control import APPLIED, ControlChannel, deploy_command
from mlstream.registry.metadata_log import open_registry
from mlstream.registry.training import rebuild, train_build
from mlstream.scoring.model_store import open_model_store
from mlstream.settings import Settings, Topics
from producers.datasets import examples, source_name
from producers.feed import KafkaFeedSink, play
from tools.demo import app_stats, start_app, stop_app, wait_for, wait_for_app

SWAPS = 6
LIVE_RATE = 200.0


def first_prediction_ms(settings: Settings, codec, since: dict[int, int], model: str, version: str,
                        timeout_s: float = 60.0) -> int:
    """scored_at of the first prediction by ``model/version`` after the offsets ``since``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        end = end_offsets(settings, settings.topics.predictions)
        found = [codec.decode(m.value()) for m in read_range(settings, settings.topics.predictions,
                                                             since, end, timeout_s=10)]
        mine = [epoch_ms(p["scored_at"]) for p in found if (p["model_name"], p["model_version"]) == (model, version)]
        if mine:
            return min(mine)
        time.sleep(0.1)
    raise TimeoutError(f"no prediction by {model}/{version} within {timeout_s:.0f}s")


def bench(base: Settings, *, records: int = 5000, say=print) -> dict:
    run = time.strftime("%Y%m%d-%H%M%S")
    settings = dataclasses.replace(base, topics=Topics(prefix=f"mlstream.bench-models-{run}.",
                                                       atlas_hook=base.topics.atlas_hook),
                                   app_id=f"mlstream-bench-models-{run}", prediction_metrics=False)
    init(settings, say=lambda line: None)
    say(f"bench: {records} SEA records with labels on {settings.topics.prefix}*")
    play(examples("sea-drift", seed=1, drift_at=10**9), KafkaFeedSink(settings), dataset="sea-drift",
         source=source_name("sea-drift"), seed=1, label_delay_s=0.0, limit=records, progress=lambda line: None)
    registry = open_registry(settings)
    store = open_model_store(settings.model_store, settings.state_dir / "models", settings.s3_endpoint_url)
    quiet = lambda line: None  # noqa: E731

    started = time.perf_counter()
    v1 = train_build(settings, registry, store, model="bench", spec="logistic_regression", say=quiet)
    build_s = time.perf_counter() - started
    v2 = train_build(settings, registry, store, model="bench", spec="hoeffding_tree", say=quiet)
    started = time.perf_counter()
    _, again, identical = rebuild(settings, registry, store, v1.ref, say=quiet)
    rebuild_s = time.perf_counter() - started
    read = v1.data["splits"]
    n_records = sum(r["end"] - r["start"] for s in read for r in s["records"])
    say(f"bench: build {build_s:.2f}s, rebuild {rebuild_s:.2f}s for {n_records} records (identical: {identical})")

    codec = topic_codec(registry_client(settings), settings, settings.topics.predictions)
    log_path = settings.state_dir / "logs" / f"{settings.app_id}.log"
    since = end_offsets(settings, settings.topics.predictions)
    launched_ms = time.time_ns() // 1_000_000
    process = start_app(settings, log_path)
    stop_feed = threading.Event()
    try:
        wait_for_app(settings, process, log_path)
        cold_ms = first_prediction_ms(settings, codec, since, settings.model, settings.model_version) - launched_ms
        say(f"bench: app start to first prediction {cold_ms} ms (the restart baseline)")
        # Counted by the app, not by end offsets: on its transactional topic each commit takes an offset too.
        wait_for(lambda: (app_stats(settings) or {"counters": {"predictions_out": 0}})["counters"]["predictions_out"]
                 >= records, 120, "the app catching up")

        def live():
            stream = itertools.takewhile(lambda _: not stop_feed.is_set(),
                                         examples("sea-drift", seed=2, drift_at=10**9))
            play(stream, KafkaFeedSink(settings), dataset="sea-drift", source=source_name("sea-drift"), seed=2,
                 rate=LIVE_RATE, label_delay_s=0.5, progress=lambda line: None)

        threading.Thread(target=live, daemon=True).start()
        control, swaps = ControlChannel(settings), []
        for i in range(SWAPS):
            target = (v1, v2)[i % 2]
            since = end_offsets(settings, settings.topics.predictions)
            command = deploy_command(settings.app_id, target.model, target.version, reason="bench")
            answer = control.request(command)
            if answer["result"] != APPLIED:
                raise RuntimeError(f"bench deploy refused: {answer['detail']}")
            first = first_prediction_ms(settings, codec, since, target.model, target.version)
            swaps.append({"build": target.ref, "applied_ms": answer["serving_since_ms"] - command["requested_at_ms"],
                          "first_prediction_ms": first - command["requested_at_ms"]})
            say(f"bench: deploy {target.ref}: applied after {swaps[-1]['applied_ms']} ms, first prediction after "
                f"{swaps[-1]['first_prediction_ms']} ms")
    finally:
        stop_feed.set()
        stop_app(process)
    firsts = [s["first_prediction_ms"] for s in swaps]
    return {
        "redeploy": {"swaps": swaps, "first_prediction_ms_median": statistics.median(firsts),
                     "first_prediction_ms_max": max(firsts), "live_rate_records_per_s": LIVE_RATE},
        "restart_baseline": {"app_start_to_first_prediction_ms": cold_ms},
        "rebuild": {"records": n_records, "seconds": round(rebuild_s, 3),
                    "seconds_per_100k_records": round(rebuild_s / n_records * 100_000, 2), "identical": identical,
                    "train_seconds": again.train_seconds},
        "build_baseline": {"seconds": round(build_s, 3),
                           "seconds_per_100k_records": round(build_s / n_records * 100_000, 2)},
        "topic_prefix": settings.topics.prefix,
    }


def format_bench(r: dict) -> str:
    d, rb = r["redeploy"], r["rebuild"]
    return "\n".join([
        f"redeploy (hot, {len(d['swaps'])} swaps on a {d['live_rate_records_per_s']:.0f} records/s feed): "
        f"command to first prediction of the new build median {d['first_prediction_ms_median']:.0f} ms, "
        f"max {d['first_prediction_ms_max']:.0f} ms",
        f"restart baseline: app start to first prediction {r['restart_baseline']['app_start_to_first_prediction_ms']} ms",
        f"rebuild: {rb['seconds']:.2f} s for {rb['records']} records = {rb['seconds_per_100k_records']:.1f} s per 100k "
        f"records (identical to the original: {rb['identical']})",
        f"build baseline (the original, same run): {r['build_baseline']['seconds']:.2f} s = "
        f"{r['build_baseline']['seconds_per_100k_records']:.1f} s per 100k records",
    ])
