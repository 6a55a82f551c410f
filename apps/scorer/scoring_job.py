"""The scorer's job on the data plane: score records, join their labels, learn; state per partition.

Run by :class:`mlstream.streaming.transactional_loop.TransactionalLoop`, one batch per
transaction. Per input partition it keeps the scored records waiting for their labels
(``a:<id>``), the labels that came before their records (``e:<id>``) and each serving build's
model (``m:<model>/<version>``); every change is written to the state changelog in the batch's
transaction, so after a crash the partition resumes exactly where its last batch committed:
no prediction twice, no label learned twice or lost.

The builds it serves come from :class:`apps.scorer.serving.Serving`, read once per batch: a hot
deploy swaps them between two batches.
"""

from __future__ import annotations

import hashlib
import logging
import pickle
import time
import uuid
from collections.abc import Callable

import orjson

from apps.scorer.dashboard import LiveHistory
from apps.scorer.serving import Serving
from mlstream.features.view import FeatureView, RecordMismatch
from mlstream.kafka.dead_letters import FEATURE_VIEW_MISMATCH, INVALID_VALUE, PROCESSING_FAILED, RECORD_TOO_LARGE
from mlstream.kafka.serde import TopicCodec
from mlstream.streaming.dead_lettering import DeadLetters
from mlstream.metrics import MetricValueError
from mlstream.scoring.monitoring import Alert
from mlstream.scoring.scorer import StreamScorer, now_ms
from mlstream.scoring.validation import InvalidValue
from mlstream.settings import Settings
from mlstream.streaming.transactional_loop import Output

log = logging.getLogger(__name__)

AWAITING, EARLY, MODEL = b"a:", b"e:", b"m:"
STORED = b"store:"  # a model entry that names where the model store keeps a snapshot too big for Kafka

#: A state entry must fit in one Kafka message (the broker's default limit is 1 MiB, with framing):
#: a record whose waiting entry would not is dead-lettered before it is scored.
MAX_STATE_ENTRY_BYTES = 900_000



def state_value(entry: dict) -> bytes:
    """A join entry as the state changelog keeps it: JSON, by orjson (a record's entry is written
    on every record, and the standard library's encoder took 7% of the job's time).

    >>> state_value({"features": {"x": 1.5}, "score": None})
    b'{"features":{"x":1.5},"score":null}'
    """
    return orjson.dumps(entry, option=orjson.OPT_SERIALIZE_NUMPY)


#: How often the model of partition 0 is exported to the model store for batch jobs (Spark scoring, builds).
EXPORT_EVERY_S = 5.0


class ScoringJob:
    def __init__(self, settings: Settings, view: FeatureView, serving: Serving, codecs: dict[str, TopicCodec],
                 counters: dict, live: LiveHistory, observe_latency: Callable[[float], None],
                 clock_ms: Callable[[], int] = now_ms):
        self.settings = settings
        self.topics = settings.topics
        self.view = view  # reads records and labels: their topics, ids, times and features
        self.serving = serving
        self.codecs = codecs
        self.counters = counters
        self.live = live
        self.observe_latency = observe_latency
        self.clock_ms = clock_ms
        self.letters = DeadLetters(settings.topics.dead_letters, codecs["dead_letters"], settings.app_id, counters)
        self.ttl_ms = int(settings.state_ttl_s * 1000)
        #: partition -> record id -> what learning needs when the label comes (insertion order = age)
        self.awaiting: dict[int, dict[str, dict]] = {}
        #: partition -> record id -> a label that came before its record
        self.early: dict[int, dict[str, dict]] = {}
        #: partition -> the newest timestamp of its inputs processed: the time expiry goes by
        self.stream_ms: dict[int, int] = {}
        self.served: list[StreamScorer] = []  # the builds of the previous batch: a new one snapshots at once
        self.exported_at = time.monotonic()
        self.before_batch: tuple[dict, dict[int, int], dict[int, bytes]] | None = None

    # -- state -----------------------------------------------------------------------------------

    def assigned(self, partitions: dict[int, dict[bytes, bytes]]) -> None:
        for partition, entries in partitions.items():
            awaiting, early, models = [], [], {}
            for key, value in entries.items():
                kind, name = key[:2], key[2:].decode()
                if kind == AWAITING:
                    awaiting.append((name, orjson.loads(value)))
                elif kind == EARLY:
                    early.append((name, orjson.loads(value)))
                elif kind == MODEL:
                    models[name] = value
            now = self.clock_ms()  # an entry without its age (written before ages were kept) counts as new
            self.awaiting[partition] = dict(sorted(awaiting, key=lambda item: item[1].setdefault("arrived_at", now)))
            self.early[partition] = dict(sorted(early, key=lambda item: item[1].setdefault("arrived_at", now)))
            for scorer in self.serving.scorers():
                if scorer.key in models:
                    self.restore_model(scorer, partition, models[scorer.key])
        self.served = self.serving.scorers()

    def model_entry(self, scorer: StreamScorer, partition: int) -> bytes:
        """The changelog's entry for a partition's model: its snapshot, or where the store keeps one too big.

        A model can outgrow a Kafka message (a tree, or a linear model after a record with tens of
        thousands of features): its snapshot then goes to the model store under its digest, written
        before the transaction commits, and the changelog holds the key.
        """
        snapshot = scorer.snapshot(partition)
        if len(snapshot) <= MAX_STATE_ENTRY_BYTES:
            return snapshot
        key = (f"state/{self.settings.app_id}/{scorer.key}/p{partition}/"
               f"{hashlib.sha256(snapshot).hexdigest()}.pkl")
        scorer.store.put(key, snapshot)
        return STORED + key.encode()

    def restore_model(self, scorer: StreamScorer, partition: int, entry: bytes) -> None:
        if entry.startswith(STORED):
            key = entry[len(STORED):].decode()
            snapshot = scorer.store.get(key)
            if snapshot is None:
                log.error("the model of %s for partition %d is not in the store (%s): it starts from the build",
                          scorer.key, partition, scorer.store.location(key))
                return
            entry = snapshot
        scorer.restore_partition(partition, entry)

    def revoked(self, partitions: list[int]) -> None:
        for scorer in self.serving.scorers():
            if 0 in partitions:
                scorer.checkpoint(0)
        for partition in partitions:
            self.awaiting.pop(partition, None)
            self.early.pop(partition, None)
            self.stream_ms.pop(partition, None)
            for scorer in self.serving.scorers():
                scorer.release(partition)

    def waiting(self) -> int:
        """Scored records waiting for their labels, over this worker's partitions."""
        return sum(len(entries) for entries in list(self.awaiting.values()))

    # -- batches ---------------------------------------------------------------------------------

    def prepare(self, messages: list, out: Output) -> list:
        """Decode the batch and read it through the feature view (in the loop's thread: decoding may
        wait for the registry); None where dead-lettered."""
        # As of the last commit: what discard() goes back to if this batch does not commit.
        self.before_batch = (dict(self.counters), dict(self.stream_ms),
                             {id(scorer): pickle.dumps(scorer.monitor) for scorer in self.serving.scorers()})
        return [self.through_view(message, out) for message in messages]

    def committed(self) -> None:
        """The batch committed: its counts and monitor figures stand (they show as they change)."""
        self.before_batch = None

    def discard(self) -> None:
        """The batch did not commit: its counts and monitor figures go, as its outputs and learning did.

        (The models go back by the changelog, restored when the loop starts again.)
        """
        if self.before_batch is None:
            return
        counters, self.stream_ms, monitors = self.before_batch
        self.counters.update(counters)
        for scorer in self.serving.scorers():
            if id(scorer) in monitors:
                scorer.monitor = pickle.loads(monitors[id(scorer)])
        self.before_batch = None

    def process(self, messages: list, decoded: list[dict | None], out: Output) -> None:
        scorers = self.serving.scorers()
        champion, challenger = self.serving.champion, self.serving.challenger
        for scorer in scorers:
            if scorer not in self.served:  # deployed since the last batch: its partitions start from the build
                scorer.learned_since_snapshot.update(self.awaiting)
        self.served = scorers
        records = self.view.records_topic
        for message, value in zip(messages, decoded):  # in time order per partition: the loop merges its inputs
            partition, timestamp_ms = message.partition(), message.timestamp()[1]
            if timestamp_ms > self.stream_ms.get(partition, -1):
                self.stream_ms[partition] = timestamp_ms
            if value is None:
                continue
            try:
                if message.topic() == records:
                    self.on_record(message, value, out, champion, challenger)
                else:
                    self.on_label(message, value, out, champion, challenger)
            except InvalidValue as err:  # a poison feature or a bad label: the model never sees it
                self.counters["invalid_values"] = self.counters.get("invalid_values", 0) + 1
                self.letters.send(message, INVALID_VALUE, str(err), out)
            except Exception as err:  # one message the model cannot take must not fail its batch again and again
                log.exception("processing %s[%s]@%s failed", message.topic(), message.partition(), message.offset())
                self.letters.send(message, PROCESSING_FAILED, f"{type(err).__name__}: {err}", out)
        self.expire(out)
        for scorer in scorers:
            for partition in sorted(scorer.learned_since_snapshot):
                out.state(partition, MODEL + scorer.key.encode(), self.model_entry(scorer, partition))
            scorer.learned_since_snapshot.clear()
        if time.monotonic() - self.exported_at > EXPORT_EVERY_S:
            for scorer in scorers:
                scorer.checkpoint(0)
            self.exported_at = time.monotonic()

    def through_view(self, message, out: Output):
        """The record (or label) as the view reads it, or None once dead-lettered."""
        is_record = message.topic() == self.view.records_topic
        self.counters["records_in" if is_record else "labels_in"] += 1
        decoded = self.letters.decode(message, self.codecs["records" if is_record else "labels"], out)
        if decoded is None:
            return None
        try:
            return (self.view.record_from if is_record else self.view.label_from)(decoded, message.key())
        except RecordMismatch as err:
            self.counters["view_mismatches"] += 1
            self.letters.send(message, FEATURE_VIEW_MISMATCH, f"feature view {self.view.ref}: {err}", out)
            return None

    def on_record(self, message, record: dict, out: Output, champion: StreamScorer,
                  challenger: StreamScorer | None) -> None:
        arrived = time.perf_counter()
        partition = message.partition()
        size = len(state_value(record["features"]))
        if size > MAX_STATE_ENTRY_BYTES:
            self.letters.send(message, RECORD_TOO_LARGE,
                             f"its features take {size:,} bytes as join state, over the {MAX_STATE_ENTRY_BYTES:,} "
                             f"a state entry may hold", out)
            return
        try:
            prediction, pending = champion.score(record, message.topic(), partition, message.offset(),
                                                 record["event_time"], arrived, self.view.ref,
                                                 self.view.categoricals)
            value = self.codecs["predictions"].encode(prediction)
        except InvalidValue:
            raise  # dead-lettered INVALID_VALUE by the batch
        except Exception as err:  # a record the model cannot take must not stop the stream
            self.letters.send(message, PROCESSING_FAILED, f"{type(err).__name__}: {err}", out)
            return
        out.produce(self.topics.predictions, value, key=message.key(), partition=partition)
        self.counters["predictions_out"] += 1
        self.observe_latency(prediction["latency_ms"])
        self.live.on_prediction(prediction["scored_at"], f"{champion.model.name} v{champion.model.version}",
                                prediction["predicted_label"], prediction["score"], record["features"])
        if self.settings.prediction_metrics:
            self.track_prediction(champion, prediction)
        if challenger is not None:
            shadow, pending["shadow"] = challenger.score(record, message.topic(), partition, message.offset(),
                                                         record["event_time"], arrived, self.view.ref,
                                                 self.view.categoricals)
            if self.settings.prediction_metrics:
                self.track_prediction(challenger, shadow)
        record_id = record["id"]
        pending["arrived_at"] = message.timestamp()[1]  # the state's age, in stream time (see expire)
        early = self.early.setdefault(partition, {}).pop(record_id, None)
        if early is None:
            self.awaiting.setdefault(partition, {})[record_id] = pending
            out.state(partition, AWAITING + record_id.encode(), state_value(pending))
        else:
            out.state(partition, EARLY + record_id.encode(), None)
            self.judge(pending, early["label"], early["event_time"], out)

    def on_label(self, message, label: tuple, out: Output, champion: StreamScorer,
                 challenger: StreamScorer | None) -> None:
        partition, (record_id, value, label_time_ms) = message.partition(), label
        for scorer in self.serving.scorers():  # before it waits or joins: a refused label is learned by none
            scorer.check_label(value)
        pending = self.awaiting.setdefault(partition, {}).pop(record_id, None)
        if pending is None:
            self.counters["labels_before_record"] += 1
            entry = {"label": value, "event_time": label_time_ms, "arrived_at": message.timestamp()[1]}
            self.early.setdefault(partition, {})[record_id] = entry
            out.state(partition, EARLY + record_id.encode(), state_value(entry))
            return
        out.state(partition, AWAITING + record_id.encode(), None)
        self.judge(pending, value, label_time_ms, out)

    def judge(self, pending: dict, label, label_time_ms: int, out: Output) -> None:
        """A label met its prediction: learn, track the label, send any alerts; the same for the shadow."""
        for which, entry in ((self.serving.champion, pending), (self.serving.challenger, pending.get("shadow"))):
            if which is None or entry is None:
                continue
            for alert in which.learn(entry, label, label_time_ms, self.view.categoricals):
                self.send_alert(which, alert, out)
            if self.settings.prediction_metrics:
                self.tracked(self.serving.tracker(which).track_delayed_metrics, {"actual": label},
                             entry["prediction_id"])

    def expire(self, out: Output) -> None:
        """Drop what waited longer than the state TTL: records never labelled, labels whose record never came.

        The wait is measured in the partition's stream time (the newest timestamp its inputs have
        brought), as Kafka Streams measures windows, not by the clock: after a restart or an outage
        the labels of the records waiting are still in the backlog, and a clock would expire the
        records before the app reads them.
        """
        for kind, state, counter in ((AWAITING, self.awaiting, "expired_awaiting_label"),
                                     (EARLY, self.early, "expired_early_labels")):
            for partition, entries in state.items():
                if partition not in self.stream_ms:
                    continue
                oldest = self.stream_ms[partition] - self.ttl_ms
                while entries:
                    record_id, entry = next(iter(entries.items()))
                    if entry["arrived_at"] >= oldest:
                        break
                    del entries[record_id]
                    out.state(partition, kind + record_id.encode(), None)
                    self.counters[counter] += 1

    # -- outputs ---------------------------------------------------------------------------------

    def send_alert(self, which: StreamScorer, alert: Alert, out: Output) -> None:
        model_crn, build_crn, deployment_crn = self.serving.tracker(which).crns
        raised_at = now_ms()
        value = {"alert_id": str(uuid.uuid4()), "model_crn": model_crn, "model_build_crn": build_crn,
                 "model_deployment_crn": deployment_crn, "raised_at": raised_at, **vars(alert)}
        out.produce(self.topics.alerts, self.codecs["alerts"].encode(value), key=deployment_crn.encode())
        self.counters["alerts"] += 1
        self.live.on_alert(alert, raised_at, f"{which.model.name} v{which.model.version}")
        log.warning("alert %s: %s", alert.alert_type, alert.message)

    def track_prediction(self, which: StreamScorer, prediction: dict) -> None:
        """CML's per-prediction row: the prediction id is its uuid; the label is merged in later."""
        row = {"score": prediction["score"], "predicted_label": prediction["predicted_label"],
               "latency_ms": prediction["latency_ms"]}
        self.tracked(self.serving.tracker(which).track_prediction, prediction["prediction_id"],
                     {k: v for k, v in row.items() if v is not None},
                     min(prediction["record_time"], prediction["scored_at"]), prediction["scored_at"])

    def tracked(self, call, *args) -> None:
        """A value the metrics API refuses (a NaN label, say) is counted and logged; the stream goes on."""
        try:
            call(*args)
        except MetricValueError as err:
            self.counters["metrics_refused"] += 1
            log.warning("metric not tracked: %s", err)
