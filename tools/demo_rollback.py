"""``mlstream demo rollback``: a bad build goes live, monitoring catches it, the app rolls back, the fix is promoted.

The story, on topics of its own (a fresh prefix per run) and a live SEA stream:

1. build v1 (logistic regression) and v2 with a harmful setting (river's random
   under-sampler aiming at 1 % of one class) from the same offsets;
2. v1 serves the live stream; v2 is hot-deployed with auto-rollback;
3. v2's rolling accuracy falls below the app's threshold: the app raises an alert on the
   alerts topic and, reading it, deploys v1 again from its snapshot (or the demo sends
   the one rollback command, with ``--manual-rollback``);
4. v2 is rebuilt from the exact same data without the bad setting (v3) and promoted.

Every figure is read back from Kafka: predictions joined with their labels per build and
phase, the alert, and the deployments topic's commands and outcomes.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import threading
import time

from mlstream.errors import UserError
from mlstream.kafka.clients import registry_client
from mlstream.kafka.reader import read_all
from mlstream.kafka.serde import epoch_ms
from mlstream.kafka.topics import init, topic_codec
from mlstream.registry.control import APPLIED, ROLLBACK, ControlChannel, deploy_command
from mlstream.registry.metadata_log import open_registry
from mlstream.registry.training import rebuild, train_build
from mlstream.scoring.model_store import open_model_store
from mlstream.scoring.monitoring import METRIC_BELOW_THRESHOLD
from mlstream.settings import Settings, Topics
from producers.datasets import examples, source_name
from producers.feed import KafkaFeedSink, play
from tools import local_services
from tools.demo import app_stats, start_app, step, stop_app, wait_for, wait_for_app

MODEL = "sea"
DATASET = "sea-drift"
STATIONARY = 10**9  # SEA without its drift: the only change in this story is the bad build
HARMFUL = {"method": "under", "desired_dist": {"True": 0.01, "False": 0.99}, "seed": 1}
FIXED = {"method": "none"}
TOTAL = 8


#: The monitor's rolling window: the shortest warm-up a threshold alert can have.
TRAINED_BUILD_WARM_UP_LABELS = 500


def demo_settings(base: Settings) -> Settings:
    run = time.strftime("%Y%m%d-%H%M%S")
    # The builds it deploys were trained before they serve: no cold start to wait out, so the threshold
    # alert's warm-up is one rolling window (unless MLSTREAM_ALERT_WARM_UP_LABELS says otherwise).
    warm_up = base.alert_warm_up_labels if base.alert_warm_up_labels is not None else TRAINED_BUILD_WARM_UP_LABELS
    return dataclasses.replace(base, topics=Topics(prefix=f"mlstream.rollback-{run}.", atlas_hook=base.topics.atlas_hook),
                               app_id=f"mlstream-rollback-{run}", prediction_metrics=False,
                               alert_warm_up_labels=warm_up)


class LiveFeed(threading.Thread):
    """The SEA stream at ``rate`` records/s with labels ``label_delay_s`` later, until stopped."""

    def __init__(self, settings: Settings, rate: float, label_delay_s: float):
        super().__init__(daemon=True)
        self.settings, self.rate, self.label_delay_s = settings, rate, label_delay_s
        self.stopping = threading.Event()
        self.stats = None

    def run(self) -> None:
        stream = itertools.takewhile(lambda _: not self.stopping.is_set(),
                                     examples(DATASET, seed=2, drift_at=STATIONARY))
        self.stats = play(stream, KafkaFeedSink(self.settings), dataset=DATASET, source=source_name(DATASET), seed=2,
                          rate=self.rate, label_delay_s=self.label_delay_s, progress=lambda line: None)


def deployments_log(settings: Settings) -> list[dict]:
    return [json.loads(m.value()) for m in read_all(settings, settings.topics.deployments)]


def alerts(settings: Settings) -> list[dict]:
    codec = topic_codec(registry_client(settings), settings, settings.topics.alerts)
    return [codec.decode(m.value()) for m in read_all(settings, settings.topics.alerts)]


def scored(settings: Settings) -> int:
    stats = app_stats(settings) or {}
    return stats.get("counters", {}).get("predictions_out", 0)


def phase_figures(settings: Settings, boundaries: list[tuple[str, str, int, int]]) -> list[dict]:
    """Accuracy of each (phase, build version, from ms, to ms), from the predictions and labels topics."""
    registry = registry_client(settings)
    predictions = topic_codec(registry, settings, settings.topics.predictions)
    labels = topic_codec(registry, settings, settings.topics.labels)
    truth = {v["id"]: v["label"] for v in (labels.decode(m.value())
                                            for m in read_all(settings, settings.topics.labels))}
    rows = [predictions.decode(m.value()) for m in read_all(settings, settings.topics.predictions)]
    out = []
    for phase, version, start, end in boundaries:
        # Both ends inclusive: a swap and the last prediction of the old build can share a
        # millisecond, and adjacent phases never serve the same build, so nothing counts twice.
        mine = [p for p in rows if p["model_name"] == MODEL and p["model_version"] == version
                and start <= epoch_ms(p["scored_at"]) <= end]
        judged = [p for p in mine if p["record_id"] in truth]
        hits = sum(p["predicted_label"] == truth[p["record_id"]] for p in judged)
        out.append({"phase": phase, "build": f"{MODEL}/{version}", "predictions": len(mine),
                    "accuracy": round(hits / len(judged), 4) if judged else None})
    return out


def run_rollback_demo(base: Settings, *, rate: float = 250.0, train_records: int = 3000, label_delay_s: float = 0.5,
                      auto_rollback: bool = True, start_services: bool = True, timeout_s: float = 120.0) -> dict:
    settings = demo_settings(base)
    say = lambda line: print(f"   {line}", flush=True)  # noqa: E731
    started = time.monotonic()

    step(1, TOTAL, "local Kafka and Schema Registry; topics of this run")
    if start_services:
        local_services.up(settings)
    init(settings, say=lambda line: None)
    say(f"topics {settings.topics.prefix}*, app id {settings.app_id}")

    step(2, TOTAL, f"{train_records} labelled SEA records to train on; build v1 and a bad v2 from the same offsets")
    play(examples(DATASET, seed=1, drift_at=STATIONARY), KafkaFeedSink(settings), dataset=DATASET,
         source=source_name(DATASET), seed=1, label_delay_s=0.0, limit=train_records, progress=lambda line: None)
    registry = open_registry(settings)
    store = open_model_store(settings.model_store, settings.state_dir / "models", settings.s3_endpoint_url)
    v1 = train_build(settings, registry, store, model=MODEL, spec="logistic_regression", say=say)
    v2 = train_build(settings, registry, store, model=MODEL, spec="logistic_regression", sampling=HARMFUL, say=say)

    step(3, TOTAL, "start the stream app and deploy v1")
    log_path = settings.state_dir / "logs" / f"{settings.app_id}.log"
    process = start_app(settings, log_path)
    feed = LiveFeed(settings, rate, label_delay_s)
    control = ControlChannel(settings)
    try:
        wait_for_app(settings, process, log_path)
        # The training records are on the same topic: let the app's start-up model score them first,
        # so that every figure below is about the live feed.
        wait_for(lambda: scored(settings) >= train_records, timeout_s, "the app catching up with the training records")
        first = control.request(deploy_command(settings.app_id, MODEL, v1.version, reason="first deploy"), timeout_s)
        if first["result"] != APPLIED:
            raise UserError(f"v1 was not deployed: {first['detail']}")
        v1_at = first["serving_since_ms"]
        say(f"{MODEL}/{v1.version} serves; live feed at {rate:.0f} records/s, labels {label_delay_s}s later")
        say(f"watch the timeline while it runs: http://localhost:{settings.web_port}/dashboard/")
        mark = scored(settings)
        feed.start()
        wait_for(lambda: scored(settings) >= mark + 3 * rate, timeout_s, "v1 scoring the live feed")

        step(4, TOTAL, f"deploy the bad v2 (sampling {HARMFUL['desired_dist']})"
             + (" with auto-rollback" if auto_rollback else ""))
        bad = control.request(deploy_command(settings.app_id, MODEL, v2.version, auto_rollback=auto_rollback,
                                             reason="new build"), timeout_s)
        deployed_at = bad["serving_since_ms"]
        say(f"{MODEL}/{v2.version} serves since {deployed_at}")

        step(5, TOTAL, "monitoring: wait for the app's alert on v2, then the rollback")
        alert = wait_for(lambda: next((a for a in alerts(settings) if a["alert_type"] == METRIC_BELOW_THRESHOLD
                                       and a["model_build_crn"] == v2.crn), None), timeout_s, "an alert on v2")
        say(f"alert {alert['alert_type']}: {alert['message']}")
        if not auto_rollback:
            say(f"rolling back by one command: mlstream models rollback --app {settings.app_id}")
            control.request(deploy_command(settings.app_id, MODEL, v1.version, reason=ROLLBACK), timeout_s)
        rolled = wait_for(lambda: next((o for o in deployments_log(settings) if o.get("type") == "outcome"
                                        and o["result"] == APPLIED and o["version"] == v1.version
                                        and o["at_ms"] > deployed_at), None), timeout_s, "the rollback to v1")
        rolled_back_at = rolled["serving_since_ms"]
        say(f"{MODEL}/{v1.version} serves again since {rolled_back_at} ({rolled['detail'] or 'rollback'})")

        step(6, TOTAL, "rebuild v2 from the exact same offsets without the bad sampling, and promote it")
        _, v3, _ = rebuild(settings, registry, store, v2.ref, {"sampling": FIXED}, say=say)
        promoted = control.request(deploy_command(settings.app_id, MODEL, v3.version, reason="fixed rebuild"),
                                   timeout_s)
        promoted_at = promoted["serving_since_ms"]
        say(f"{MODEL}/{v3.version} (parent {v3.parent}) serves since {promoted_at}")
        mark = scored(settings)
        wait_for(lambda: scored(settings) >= mark + 3 * rate, timeout_s, "v3 scoring the live feed")

        step(7, TOTAL, "stop the feed; wait until every record is scored and labelled")
        feed.stopping.set()
        feed.join()
        # The app's count includes the training records it scored first.
        wait_for(lambda: scored(settings) >= train_records + feed.stats.records, timeout_s, "every record scored")
        time.sleep(label_delay_s + 1.0)
    finally:
        feed.stopping.set()
        stop_app(process)

    step(8, TOTAL, "the story in numbers, read back from Kafka")
    end = 2**62
    phases = phase_figures(settings, [("before (v1 serves)", v1.version, v1_at, deployed_at),
                                      ("during (bad v2 serves)", v2.version, deployed_at, rolled_back_at),
                                      ("after rollback (v1)", v1.version, rolled_back_at, promoted_at),
                                      ("after fix (v3 serves)", v3.version, promoted_at, end)])
    summary = {
        "topic_prefix": settings.topics.prefix, "app_id": settings.app_id,
        "builds": {b.ref: {"sampling": b.sampling, "test_accuracy": b.metrics.get("test", {}).get("accuracy"),
                           "parent": b.parent} for b in (v1, v2, v3)},
        "phases": phases,
        "records_affected": phases[1]["predictions"],
        "time_to_detect_ms": epoch_ms(alert["raised_at"]) - deployed_at,
        "time_to_roll_back_ms": rolled_back_at - epoch_ms(alert["raised_at"]),
        "bad_build_served_ms": rolled_back_at - deployed_at,
        "rollback": "automatic" if auto_rollback else "one command",
        "alert": {k: alert[k] for k in ("alert_type", "subject", "value", "threshold", "records_learned")},
        "records_streamed": feed.stats.records,
        "seconds": round(time.monotonic() - started, 1),
        "app_log": str(log_path),
    }
    print_summary(summary)
    return summary


def print_summary(s: dict) -> None:
    print("\n" + "=" * 72)
    print(" mlstream demo rollback: a bad build caught, rolled back and fixed on a live stream")
    print("=" * 72)
    for ref, b in s["builds"].items():
        print(f" build {ref:7} sampling {b['sampling'].get('method', 'none'):6} "
              f"{json.dumps(b['sampling'].get('desired_dist', {})):34} test accuracy {b['test_accuracy']}"
              + (f"  (rebuilt from {b['parent']})" if b["parent"] else ""))
    print()
    for p in s["phases"]:
        acc = "-" if p["accuracy"] is None else f"{p['accuracy']:.3f}"
        print(f" {p['phase']:26} {p['build']:7} accuracy {acc:6} over {p['predictions']} predictions")
    print()
    a = s["alert"]
    print(f" detected by          {a['alert_type']} on {a['subject']} = {a['value']:.3f} < {a['threshold']} "
          f"after {a['records_learned']} labels")
    print(f" time to detect       {s['time_to_detect_ms'] / 1000:.1f} s after the bad deploy")
    print(f" time to roll back    {s['time_to_roll_back_ms'] / 1000:.2f} s after the alert ({s['rollback']}), "
          f"no restart")
    print(f" records affected     {s['records_affected']} predictions by the bad build "
          f"({s['bad_build_served_ms'] / 1000:.1f} s live)")
    print(f" records streamed     {s['records_streamed']} in {s['seconds']:.0f} s; topics {s['topic_prefix']}*")
    print("\nLook closer:")
    print(f"  MLSTREAM_TOPIC_PREFIX={s['topic_prefix']} mlstream models list")
    print(f"  MLSTREAM_TOPIC_PREFIX={s['topic_prefix']} mlstream models show {MODEL}/3")
    print(f"  {s['app_log']}")
