"""The scorer's job without Kafka: join, state changelog entries, expiry, oversize records."""

from __future__ import annotations

import dataclasses
import json
import time

import models
from apps.scorer.dashboard import LiveHistory
from apps.scorer.scoring_job import AWAITING, EARLY, MODEL, ScoringJob
from apps.scorer.serving import Serving
from mlstream.features.view import default_view
from mlstream.registry.records import CHAMPION
from mlstream.scoring.model_store import FolderModelStore
from mlstream.scoring.scorer import StreamScorer
from mlstream.settings import Settings


class Codec:
    """Values are dicts already; encoding is JSON, so tests can read what was produced."""

    def decode(self, value):
        return value

    def encode(self, value):
        return json.dumps(value, default=str).encode()


class Message:
    def __init__(self, topic, partition, offset, value, timestamp_ms=0):
        self._topic, self._partition, self._offset, self._value, self._ts = topic, partition, offset, value, timestamp_ms

    def topic(self):
        return self._topic

    def partition(self):
        return self._partition

    def offset(self):
        return self._offset

    def key(self):
        return b"k"

    def value(self):
        return self._value

    def timestamp(self):
        return (1, self._ts)

    def headers(self):
        return None


class Out:
    def __init__(self):
        self.produced, self.states = [], []

    def produce(self, topic, value, key=None, partition=None, headers=None):
        self.produced.append((topic, value))

    def state(self, partition, key, value):
        self.states.append((partition, key, value))


class Clock:
    def __init__(self):
        self.ms = 1_000_000

    def __call__(self):
        return self.ms


def job(tmp_path, clock=None, **settings):
    base = dataclasses.replace(Settings.from_env(), state_dir=tmp_path, prediction_metrics=False, **settings)
    serving = Serving(base.app_id, metrics_sink=None)
    serving.install(CHAMPION, StreamScorer.restore(lambda: models.build("logistic_regression"),
                                                   "logistic_regression", "1", FolderModelStore(tmp_path)))
    counters = {name: 0 for name in ("records_in", "labels_in", "predictions_out", "dead_letters",
                                     "labels_before_record", "alerts", "metrics_refused",
                                     "expired_awaiting_label", "expired_early_labels")}
    return ScoringJob(base, default_view(base.topics), serving, {name: Codec() for name in ("records", "labels", "predictions", "dead_letters",
                                                                  "alerts")},
                      counters, LiveHistory(), lambda ms: None, clock_ms=clock or Clock())


def run(scoring, messages, out):
    scoring.process(messages, scoring.prepare(messages, out), out)


def record(topics, partition, offset, rid, features, at=0):
    return Message(topics.records, partition, offset, {"id": rid, "event_time": 0, "features": features}, at)


def label(topics, partition, offset, rid, value, at=0):
    return Message(topics.labels, partition, offset, {"id": rid, "label": value, "event_time": 0}, at)


def test_a_record_waits_in_the_changelog_until_its_label_then_the_model_snapshot_is_written(tmp_path):
    scoring = job(tmp_path)
    topics, out = scoring.topics, Out()
    run(scoring, [record(topics, 1, 0, "r1", {"x": 1.0})], out)
    assert [(p, k) for p, k, v in out.states] == [(1, AWAITING + b"r1")]
    assert [t for t, _ in out.produced] == [topics.predictions]
    out = Out()
    run(scoring, [label(topics, 1, 0, "r1", True)], out)
    assert [(p, k, v is None) for p, k, v in out.states] == [(1, AWAITING + b"r1", True),
                                                             (1, MODEL + b"logistic_regression/1", False)]
    assert scoring.serving.champion.n_learned == 1


def test_state_restored_on_assignment_continues_the_join_and_the_model(tmp_path):
    first = job(tmp_path)
    topics, out = first.topics, Out()
    run(first, [record(topics, 0, 0, "a", {"x": 1.0}), record(topics, 0, 1, "b", {"x": 2.0}),
                label(topics, 0, 0, "a", True), label(topics, 0, 1, "early", False)], out)
    changelog = {}
    for partition, key, value in out.states:
        if value is None:
            changelog.pop(key, None)
        else:
            changelog[key] = value
    assert set(changelog) == {AWAITING + b"b", EARLY + b"early", MODEL + b"logistic_regression/1"}

    second = job(tmp_path)  # another worker takes partition 0
    second.assigned({0: changelog})
    assert second.serving.champion.n_learned == 1
    assert second.waiting() == 1
    run(second, [label(topics, 0, 2, "b", False), record(topics, 0, 2, "early", {"x": 3.0})], Out())
    assert second.serving.champion.n_learned == 3 and second.waiting() == 0


def test_unmatched_state_expires_counted_once_the_stream_moved_past_the_ttl(tmp_path):
    scoring = job(tmp_path, state_ttl_s=60)
    topics, out = scoring.topics, Out()
    run(scoring, [record(topics, 0, 0, "never-labelled", {"x": 1.0}, at=1_000_000),
                  label(topics, 0, 0, "never-scored", True, at=1_000_000)], out)
    out = Out()
    run(scoring, [record(topics, 1, 0, "elsewhere", {"x": 1.0}, at=1_100_000)], out)  # another partition's time
    assert scoring.counters["expired_awaiting_label"] == 0
    run(scoring, [record(topics, 0, 1, "fresh", {"x": 1.0}, at=1_061_000)], out)
    assert scoring.counters["expired_awaiting_label"] == 1 and scoring.counters["expired_early_labels"] == 1
    tombstones = {key for _, key, value in out.states if value is None}
    assert tombstones == {AWAITING + b"never-labelled", EARLY + b"never-scored"}
    assert scoring.waiting() == 2


def test_records_waiting_through_a_long_stop_meet_their_labels_from_the_backlog(tmp_path):
    """The clock moved on while the app was down; the labels waiting in the topic are not late for it."""
    clock = Clock()
    scoring = job(tmp_path, clock=clock, state_ttl_s=60)
    topics, out = scoring.topics, Out()
    run(scoring, [record(topics, 0, 0, "r1", {"x": 1.0}, at=clock.ms)], out)
    sent = clock.ms
    clock.ms += 600_000  # ten minutes down; the backlog is read in batches, r1's label in the second
    run(scoring, [record(topics, 0, 1, "r2", {"x": 2.0}, at=sent + 500)], out)
    run(scoring, [label(topics, 0, 0, "r1", True, at=sent + 1000)], out)
    assert scoring.counters["expired_awaiting_label"] == 0
    assert scoring.serving.champion.n_learned == 1


def test_a_record_too_large_for_its_state_entry_is_dead_lettered_before_it_is_scored(tmp_path):
    scoring = job(tmp_path)
    topics, out = scoring.topics, Out()
    huge = {f"feature_{i}": float(i) for i in range(40_000)}  # about 1.2 MB as JSON
    run(scoring, [record(topics, 0, 0, "huge", huge), record(topics, 0, 1, "small", {"x": 1.0})], out)
    letters = [json.loads(value) for topic, value in out.produced if topic == topics.dead_letters]
    assert [letter["error_type"] for letter in letters] == ["RECORD_TOO_LARGE"]
    assert scoring.counters["predictions_out"] == 1 and scoring.waiting() == 1


def test_a_label_the_model_cannot_learn_is_dead_lettered_and_the_batch_goes_on(tmp_path):
    scoring = job(tmp_path)
    topics, out = scoring.topics, Out()
    run(scoring, [record(topics, 0, 0, "a", {"x": 1.0}), record(topics, 0, 1, "b", {"x": 1.0})], out)
    out = Out()
    run(scoring, [label(topics, 0, 0, "a", "yes"), label(topics, 0, 1, "b", True)], out)  # 'yes' for a bool target
    letters = [json.loads(value) for topic, value in out.produced if topic == topics.dead_letters]
    assert [(letter["source_offset"], letter["error_type"]) for letter in letters] == [(0, "INVALID_VALUE")]
    assert letters[0]["error_message"].startswith("label: WRONG_LABEL_TYPE: 'yes'")
    assert scoring.serving.champion.n_learned == 1


def test_a_batch_that_did_not_commit_leaves_no_trace_in_the_counts_and_figures(tmp_path):
    scoring = job(tmp_path)
    topics, out = scoring.topics, Out()
    run(scoring, [record(topics, 0, 0, "a", {"x": 1.0}), label(topics, 0, 0, "a", True)], out)
    before = (dict(scoring.counters), scoring.serving.champion.monitor.figures())
    run(scoring, [record(topics, 0, 1, "b", {"x": 2.0}), label(topics, 0, 1, "b", False)], Out())
    scoring.discard()  # the loop aborted that batch's transaction
    assert (scoring.counters, scoring.serving.champion.monitor.figures()) == before


def test_a_model_too_big_for_a_kafka_message_goes_to_the_store_and_comes_back(tmp_path):
    scoring = job(tmp_path)
    topics, out = scoring.topics, Out()
    wide = {f"f{i:05d}": float(i) for i in range(40_000)}  # its JSON fits a state entry; the model it makes does not
    run(scoring, [record(topics, 0, 0, "wide", wide), label(topics, 0, 0, "wide", True)], out)
    entry = next(value for _, key, value in out.states if key == MODEL + b"logistic_regression/1")
    assert entry.startswith(b"store:") and len(entry) < 1000
    second = job(tmp_path)
    second.assigned({0: {MODEL + b"logistic_regression/1": entry}})
    assert second.serving.champion.n_learned == 1


def test_a_decoding_error_that_is_not_the_registry_s_absence_is_dead_lettered_not_retried(tmp_path):
    scoring = job(tmp_path)

    class Broken(Codec):
        def decode(self, value):
            raise KeyError("a codec bug, not an outage")

    scoring.codecs["records"] = Broken()
    topics, out = scoring.topics, Out()
    run(scoring, [record(topics, 0, 0, "a", {"x": 1.0})], out)  # the old code slept and retried for ever here
    letters = [json.loads(value) for topic, value in out.produced if topic == topics.dead_letters]
    assert [letter["error_type"] for letter in letters] == ["PROCESSING_FAILED"]
