"""`mlstream chaos`: the fault campaign against the stream app, repeatable, counted from Kafka.

Each scenario runs a real ``mlstream app`` on topics of its own, plays a feed into it and does
one kind of harm while the feed runs:

- ``sigkill``: SIGKILL the app N times, restarting it each time;
- ``broker_restart``: stop the local Kafka broker for a few seconds, then start it again;
- ``registry_outage``: stop the local Schema Registry for a few seconds, then start it again;
- ``fuzz``: poison and malformed input: NaN, infinite and huge features, a record too large for
  the app's state, labels of the wrong type, a label whose record never comes, undecodable bytes.

Then it reads the topics back (read_committed) and counts, per scenario: records sent, records
lost (an input offset with neither a prediction nor a dead letter), unmarked duplicates (an
offset with two predictions), dead letters, labels sent and learned (the models' learned counts,
which the state changelog restores, so a label learned twice or lost shows), crashes (the app
process died, or its data plane restarted from an error) and the time from the harm's end to
the next prediction.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from confluent_kafka import KafkaException, TopicPartition

from mlstream.errors import UserError
from mlstream.kafka import clients
from mlstream.kafka.reader import end_offsets, read_all
from mlstream.kafka.serde import TopicCodec
from mlstream.kafka.topics import init, topic_codec
from mlstream.settings import Settings, Topics
from producers.datasets import examples, source_name
from producers.feed import KafkaFeedSink, play, record_id
from tools import local_services
from tools.demo import app_stats, start_app, stop_app, wait_for, wait_for_app
from tools.local_services.processes import our_pid, signal_group, wait_gone
from tools.local_services.state import KAFKA, REGISTRY, state_paths

SCENARIOS = ("sigkill", "broker_restart", "registry_outage", "fuzz")
KEYS = ("records_sent", "lost", "unmarked_duplicates", "dead_lettered", "labels_learned", "labels_sent", "crashes",
        "restart_to_first_prediction_s")
OUTAGE_S = 8.0

Say = Callable[[str], None]


class Scenario:
    """One app on topics of its own, a feed in the background, and the counts afterwards."""

    def __init__(self, settings: Settings, name: str, records: int, rate: float, say: Say):
        run = f"chaos-{name.replace('_', '-')}-{uuid.uuid4().hex[:6]}"
        self.services = settings  # the local services' own settings (their state dir holds their pid files)
        self.settings = dataclasses.replace(settings, topics=Topics(prefix=f"{run}.", atlas_hook=f"{run}.ATLAS_HOOK"),
                                            app_id=run, worker_id=f"{run}-worker",
                                            state_dir=settings.state_dir / "chaos" / run, state_ttl_s=30)
        self.name = name
        self.say = say
        self.log = self.settings.state_dir / "app.log"
        self.examples = list(itertools.islice(examples("sea-drift", seed=11), records))
        self.rate = rate
        self.app = None
        self.crashes = 0
        self.unlearnable_labels = 0  # labels the app must not learn (their record was poison, or never came)

    def start(self) -> None:
        init(self.settings, say=lambda _: None)
        self.app = start_app(self.settings, self.log)
        wait_for_app(self.settings, self.app, self.log)

    def feed(self, until: threading.Event | None = None) -> threading.Thread:
        """Play the scenario's records; with ``until``, go on past them (SEA is endless) until it is set."""
        records = self.examples if until is None else itertools.chain(self.examples, itertools.takewhile(
            lambda _: not until.is_set(), itertools.islice(examples("sea-drift", seed=11), len(self.examples), None)))

        def run() -> None:
            try:
                play(records, KafkaFeedSink(self.settings), dataset="sea", source=source_name("sea-drift"),
                     rate=self.rate, label_delay_s=0.2, progress=lambda _: None)
            except Exception as err:  # e.g. a broker away longer than the producer waits: counted from Kafka
                self.say(f"  {self.name}: the feed gave up: {err}")

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        return thread

    def alive(self) -> bool:
        if self.app.poll() is not None:
            self.crashes += 1
            self.say(f"  {self.name}: the app died (exit {self.app.returncode}); restarting it")
            self.app = start_app(self.settings, self.log)
            return False
        return True

    def predictions_out(self) -> int:
        stats = app_stats(self.settings)
        return stats["counters"]["predictions_out"] if stats else 0

    def time_to_next_prediction(self, since_ms: int, timeout_s: float = 120.0) -> float:
        """Seconds from ``since_ms`` (epoch ms) to the next committed prediction, by its own timestamp.

        Committed, not merely counted by the app: a batch scored and then killed before its commit
        never happened. By the prediction's timestamp, not by when this reader got it: a new
        read_committed consumer on a loaded machine takes seconds to fetch, which is not the app's.
        """
        topic = self.settings.topics.predictions
        consumer = clients.consumer(self.settings, **{"group.id": f"mlstream-chaos-{uuid.uuid4().hex}",
                                                      "enable.auto.commit": False, "isolation.level": "read_committed"})
        try:
            start = wait_for(lambda: end_offsets_or_none(self.settings, topic), 60, f"the end offsets of {topic}")
            consumer.assign([TopicPartition(topic, p, o) for p, o in start.items()])
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline:
                self.alive()
                message = consumer.poll(0.2)
                if message is not None and message.error() is None:
                    return round((message.timestamp()[1] - since_ms) / 1000, 1)
        finally:
            consumer.close()
        raise UserError(f"timed out after {timeout_s:.0f}s waiting for a prediction after the {self.name} "
                        f"(see {self.log})")

    def finish(self, restart_s: float | None) -> dict:
        # What reached Kafka, not what the feed meant to send (a producer may give up during an outage).
        labels_sent = len(read_all(self.settings, self.settings.topics.labels))
        learnable = labels_sent - self.unlearnable_labels
        stats = wait_for(lambda: self.alive() and (s := app_stats(self.settings))
                         and s["model"]["n_learned"] >= learnable and s, 180,
                         f"the app to learn {learnable} labels (see {self.log})")
        self.crashes += stats["data_plane"]["crashes"]
        stop_app(self.app)
        return self.count(stats, restart_s, labels_sent)

    def count(self, stats: dict, restart_s: float | None, labels_sent: int) -> dict:
        settings = self.settings
        registry = clients.registry_client(settings)
        offsets = {(m.partition(), m.offset()) for m in read_all(settings, settings.topics.records)}
        codec = topic_codec(registry, settings, settings.topics.predictions)
        predicted = Counter((p["input_partition"], p["input_offset"]) for p in (
            codec.decode(m.value()) for m in read_all(settings, settings.topics.predictions)))
        letters = TopicCodec.for_topic(registry, settings.topics.dead_letters, "dead_letter")
        dead = [letters.decode(m.value()) for m in read_all(settings, settings.topics.dead_letters)]
        dead_offsets = {(d["source_partition"], d["source_offset"]) for d in dead
                        if d["source_topic"] == settings.topics.records}
        return {
            "name": self.name,
            "records_sent": len(offsets),
            "lost": len(offsets - set(predicted) - dead_offsets),
            "unmarked_duplicates": sum(n - 1 for n in predicted.values() if n > 1),
            "dead_lettered": len(dead),
            "labels_learned": stats["model"]["n_learned"],
            "labels_sent": labels_sent,
            "crashes": self.crashes,
            "restart_to_first_prediction_s": restart_s,
            "dead_letter_reasons": dict(Counter(d["error_type"] for d in dead)),
        }


def end_offsets_or_none(settings: Settings, topic: str) -> dict[int, int] | None:
    """None while the partitions have no leader yet (just after a broker restart)."""
    try:
        return end_offsets(settings, topic)
    except KafkaException:
        return None


def stop_service(settings: Settings, service: str) -> None:
    pid = our_pid(state_paths(settings), service)
    if pid is None:
        raise RuntimeError(f"{service} is not running under {settings.state_dir}")
    signal_group(pid, signal.SIGTERM)
    wait_gone(pid, timeout_s=30)


def restart_service(settings: Settings) -> None:
    """Start what was stopped, waiting as long as a loaded machine needs (a broker with many topics takes a while)."""
    try:
        local_services.up(settings, progress=lambda _: None)
    except local_services.LocalServicesError:
        wait_for(lambda: all(s.healthy for s in local_services.status(settings)), 180, "the local services")


def sigkill(scenario: Scenario, kills: int) -> dict:
    scenario.start()
    # The feed goes on until the last restart has scored: each restart is timed to a record sent after it
    # (a fixed feed could end while the app was down, and a backlog is all scored by the first process).
    kills_done = threading.Event()
    feed = scenario.feed(until=kills_done)
    restarts = []
    for kill in range(kills):
        wait_for(lambda: scenario.alive() and scenario.predictions_out() >= 50, 120, f"predictions before kill {kill + 1}")
        scenario.app.send_signal(signal.SIGKILL)
        scenario.app.wait()
        killed_at = time.time_ns() // 1_000_000
        scenario.app = start_app(scenario.settings, scenario.log)
        restarts.append(scenario.time_to_next_prediction(killed_at))
        scenario.say(f"  sigkill {kill + 1}/{kills}: scoring again after {restarts[-1]} s")
    kills_done.set()
    feed.join()
    return scenario.finish(max(restarts))


def outage(scenario: Scenario, service: str) -> dict:
    scenario.start()
    recovered = threading.Event()  # the feed goes on until then, so the recovery is timed to a record after it
    feed = scenario.feed(until=recovered)
    wait_for(lambda: scenario.predictions_out() >= 100, 120, "predictions before the outage")
    stop_service(scenario.services, service)
    scenario.say(f"  {service} stopped for {OUTAGE_S:.0f} s")
    time.sleep(OUTAGE_S)
    restart_service(scenario.services)
    back_at = time.time_ns() // 1_000_000
    restart_s = scenario.time_to_next_prediction(back_at)
    scenario.say(f"  {service} back; scoring again after {restart_s} s")
    recovered.set()
    feed.join()
    return scenario.finish(restart_s)


def fuzz(scenario: Scenario) -> dict:
    """Poison values and malformed messages between good records; every one must be dead-lettered, not learned."""
    scenario.start()
    settings = scenario.settings
    registry = clients.registry_client(settings)
    records = topic_codec(registry, settings, settings.topics.records)
    labels = topic_codec(registry, settings, settings.topics.labels)
    producer = clients.producer(settings)
    now = time.time_ns() // 1_000_000
    poison = {"nan": math.nan, "inf": math.inf, "minus-inf": -math.inf, "huge": 1e308, "minus-huge": -1e308}
    sent = []
    for name, value in poison.items():
        rid = f"fuzz-{name}"
        features = {"attr_0": value, "attr_1": 1.0, "attr_2": 2.0}
        sent.append((settings.topics.records, rid, records.encode({"id": rid, "source": "fuzz", "event_time": now,
                                                                   "features": features})))
        sent.append((settings.topics.labels, rid, labels.encode({"id": rid, "label": True, "event_time": now})))
    big = {f"feature_{i:05d}": float(i) for i in range(38_000)}  # a valid record of about 870 KB
    sent.append((settings.topics.records, "fuzz-big", records.encode({"id": "fuzz-big", "source": "fuzz",
                                                                       "event_time": now, "features": big})))
    sent.append((settings.topics.labels, "fuzz-big", labels.encode({"id": "fuzz-big", "label": True,
                                                                     "event_time": now})))
    for bad_label, value in (("yes", "yes"), ("two-and-a-half", 2.5)):
        rid = f"fuzz-label-{bad_label}"
        sent.append((settings.topics.records, rid, records.encode({"id": rid, "source": "fuzz", "event_time": now,
                                                                   "features": {"attr_0": 1.0, "attr_1": 1.0,
                                                                                "attr_2": 1.0}})))
        sent.append((settings.topics.labels, rid, labels.encode({"id": rid, "label": value, "event_time": now})))
    sent.append((settings.topics.labels, "fuzz-orphan", labels.encode({"id": "fuzz-orphan", "label": False,
                                                                        "event_time": now})))
    sent.append((settings.topics.records, "fuzz-garbage", b"\x00\x00\x00\x00\x01\xff\xff"))
    producer.produce(settings.topics.records, key=b"fuzz-garbage", value=b"not avro at all")
    feed = scenario.feed()
    for topic, key, value in sent:
        producer.produce(topic, key=key.encode(), value=value)
    producer.flush(30)
    # Not learnable: the poison records' labels, the big record's, the two bad labels, the orphan.
    scenario.unlearnable_labels = len(poison) + 1 + 2 + 1
    feed.join()
    return scenario.finish(None)


def run_chaos(settings: Settings, *, scenarios: tuple[str, ...] = SCENARIOS, kills: int = 3, records: int = 2000,
              rate: float = 100.0, say: Say = print) -> dict:
    local_services.up(settings, progress=say)
    results = []
    for name in scenarios:
        say(f"== chaos: {name}")
        scenario = Scenario(settings, name, records, rate, say)
        try:
            if name == "sigkill":
                result = sigkill(scenario, kills)
            elif name == "broker_restart":
                result = outage(scenario, KAFKA)
            elif name == "registry_outage":
                result = outage(scenario, REGISTRY)
            else:
                result = fuzz(scenario)
        finally:
            if scenario.app is not None and scenario.app.poll() is None:
                stop_app(scenario.app)
        results.append(result)
        say("  " + ", ".join(f"{key} {result[key]}" for key in KEYS))
    totals = {key: sum(r[key] for r in results) for key in KEYS if key != "restart_to_first_prediction_s"}
    times = [r["restart_to_first_prediction_s"] for r in results if r["restart_to_first_prediction_s"] is not None]
    totals["restart_to_first_prediction_s"] = max(times) if times else None
    return {"scenarios": results, "totals": totals}
