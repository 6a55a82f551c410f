"""The scoring logic of the stream app, free of Kafka so it can be tested alone.

A record is scored at once; what is needed to learn from it later (features and
the prediction) waits until its label arrives. A label that comes
before its record waits too, so the model learns from each record exactly once,
and never before both the record has been scored and its label has arrived.

Poison values stop here, whatever data plane calls: :meth:`StreamScorer.score` and
:meth:`StreamScorer.learn` raise :class:`~mlstream.scoring.validation.InvalidValue` before
the model sees a non-finite or out-of-range feature or a label that does not fit its target,
and :meth:`StreamScorer.checkpoint` never stores a model whose outputs are not finite.
"""

from __future__ import annotations

import copy
import logging
import math
import pickle
import time
from collections.abc import Collection
from typing import Callable

from mlstream.features.view import DEFAULT_REF
from mlstream.identifiers import uuid4_text
from mlstream.scoring.model_store import ModelStore
from mlstream.scoring.monitoring import Alert, ModelMonitor
from mlstream.scoring.online_model import OnlineModel, Prediction
from mlstream.scoring.validation import DEFAULT_MAX_ABS_VALUE, check_features, check_label, target_of

log = logging.getLogger(__name__)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def prediction_value(model: OnlineModel, prediction: Prediction, record_id: str, topic: str, partition: int,
                     offset: int, record_time_ms: int, scored_at: int, latency_ms: float,
                     feature_view: str = DEFAULT_REF) -> dict:
    """The value of the ``prediction`` schema for one scored record, under a new prediction id;
    ``feature_view`` is the ref (``NAME@VERSION``) of the view that read the record."""
    return {
        "prediction_id": uuid4_text(),
        "record_id": record_id,
        "model_name": model.name,
        "model_version": model.version,
        "input_topic": topic,
        "input_partition": partition,
        "input_offset": offset,
        "predicted_label": prediction.label,
        "score": prediction.score,
        "record_time": record_time_ms,
        "scored_at": scored_at,
        "latency_ms": latency_ms,
        "feature_view": feature_view,
    }


def finite_outputs(model: OnlineModel, features: dict[str, float]) -> bool:
    """Whether ``model``'s prediction for ``features`` is finite: its score, and its label if numeric."""
    prediction = model.predict(features)
    return all(math.isfinite(value) for value in (prediction.score, prediction.label)
               if isinstance(value, float))


class StreamScorer:
    """A build as it serves a stream: one model per input partition, one monitor over them all.

    Each partition learns its own copy of the build's model (:attr:`model`), so its state moves
    with the partition when workers come and go, and is the same whatever the number of workers:
    no two workers ever learn, or snapshot, the same model. The price: a model learns from the
    labels of its partition only (see docs/data-plane.md for the accuracy this costs).

    Poison values are refused (:class:`~mlstream.scoring.validation.InvalidValue`): ``max_abs_value``
    bounds every feature and a regression label (``MLSTREAM_MAX_ABS_VALUE``).
    """

    def __init__(self, model: OnlineModel, store: ModelStore, clock_ms: Callable[[], int] = now_ms,
                 monitor: ModelMonitor | None = None, max_abs_value: float = DEFAULT_MAX_ABS_VALUE,
                 estimator_factory: Callable[[], object] | None = None):
        self.model = model  # the build as deployed: where every partition's model starts
        self.store = store
        self.monitor = monitor or ModelMonitor(model.name, model.version)
        self.clock_ms = clock_ms
        self.partition_models: dict[int, OnlineModel] = {}
        self.learned_since_snapshot: set[int] = set()
        self.checkpointed_at_learned = 0
        self.max_abs_value = max_abs_value
        self.target = target_of(model.estimator)
        self.estimator_factory = estimator_factory  # a fresh estimator, when no sound model is left
        # Every feature learned from, at its latest value: what a checkpoint probes a model with.
        self.probe: dict[str, float] = {}
        self.checkpoints_refused = 0

    @classmethod
    def restore(cls, estimator_factory: Callable[[], object], name: str, version: str, store: ModelStore,
                max_abs_value: float = DEFAULT_MAX_ABS_VALUE, **monitor_options) -> "StreamScorer":
        """Start from the stored checkpoint of this model version, or afresh.

        ``monitor_options`` go to this version's :class:`ModelMonitor` (thresholds, drift features).
        """
        checkpoint = store.load(name, version)
        if checkpoint is None:
            model = OnlineModel(estimator_factory(), name, version)
        else:
            model = OnlineModel(checkpoint["estimator"], name, version, checkpoint["n_learned"])
        return cls(model, store, monitor=ModelMonitor(name, version, **monitor_options),
                   max_abs_value=max_abs_value, estimator_factory=estimator_factory)

    @property
    def key(self) -> str:
        """The build's name in state snapshots: ``<model>/<version>``."""
        return f"{self.model.name}/{self.model.version}"

    @property
    def n_learned(self) -> int:
        """Labels learned from the stream, over the partitions this worker holds."""
        return sum(m.n_learned for m in self.partition_models.values())

    def model_for(self, partition: int) -> OnlineModel:
        """The partition's model: it starts as a copy of the build's and counts the labels it learns."""
        model = self.partition_models.get(partition)
        if model is None:
            model = self.partition_models[partition] = OnlineModel(
                copy.deepcopy(self.model.estimator), self.model.name, self.model.version)
        return model

    def snapshot(self, partition: int) -> bytes:
        """The partition's model as bytes, for the state changelog."""
        model = self.model_for(partition)
        return pickle.dumps({"estimator": model.estimator, "n_learned": model.n_learned},
                            protocol=pickle.HIGHEST_PROTOCOL)

    def restore_partition(self, partition: int, snapshot: bytes) -> None:
        state = pickle.loads(snapshot)
        self.partition_models[partition] = OnlineModel(state["estimator"], self.model.name, self.model.version,
                                                       state["n_learned"])

    def release(self, partition: int) -> None:
        """The partition moved to another worker: its model goes with it (via the changelog)."""
        self.partition_models.pop(partition, None)
        self.learned_since_snapshot.discard(partition)

    def score(
        self, record: dict, topic: str, partition: int, offset: int, record_time_ms: int, arrived: float,
        feature_view: str = DEFAULT_REF, categoricals: Collection[str] = (),
    ) -> tuple[dict, dict]:
        """Return the prediction record and the pending entry that waits for the label.

        ``record`` is what a feature view makes of a decoded value (:meth:`FeatureView.record_from`),
        ``feature_view`` that view's ref, ``categoricals`` its string features. ``arrived`` is the
        ``time.perf_counter()`` reading taken when the message reached the app, so the latency covers
        decoding as well as scoring. Raises
        :class:`~mlstream.scoring.validation.InvalidValue` for a feature no model should see.
        """
        check_features(record["features"], self.max_abs_value, categoricals)
        model = self.model_for(partition)
        prediction = model.predict(record["features"])
        scored_at = self.clock_ms()
        latency_ms = (time.perf_counter() - arrived) * 1000.0
        self.monitor.on_scored(latency_ms)
        out = prediction_value(model, prediction, record["id"], topic, partition, offset, record_time_ms,
                               scored_at, latency_ms, feature_view)
        pending = {
            "features": record["features"],
            "prediction_id": out["prediction_id"],
            "predicted_label": prediction.label,
            "score": prediction.score,
            "model_version": model.version,
            "scored_at": scored_at,
            "partition": partition,
        }
        return out, pending

    def learn(self, pending: dict, label, label_time_ms: int, categoricals: Collection[str] = ()) -> list[Alert]:
        """The label met its prediction: judge the prediction, then learn; return any alerts raised.

        Raises :class:`~mlstream.scoring.validation.InvalidValue`, before judging or learning
        anything, for a label that does not fit the model's target, or a pending entry with a
        feature that would not be scored now (one parked before these checks existed).
        """
        self.check_label(label)
        check_features(pending["features"], self.max_abs_value, categoricals)
        alerts = self.monitor.on_outcome(pending["predicted_label"], label,
                                         max(0, label_time_ms - pending["scored_at"]),
                                         score=pending.get("score"), features=pending["features"])
        partition = pending.get("partition", 0)
        self.model_for(partition).learn(pending["features"], label)
        self.learned_since_snapshot.add(partition)
        self.probe.update(pending["features"])
        return alerts

    def check_label(self, label) -> None:
        """Raise :class:`~mlstream.scoring.validation.InvalidValue` if ``label`` does not fit this model's target."""
        check_label(label, self.target, self.max_abs_value)

    def checkpoint(self, partition: int = 0) -> bool:
        """Export one partition's model to the model store for batch jobs (Spark scoring, builds).

        Only the owner of ``partition`` has its model, so only one worker writes the checkpoint.
        Return whether it saved (it does not when the model learned nothing since the last save).

        First the model is probed with every feature learned from, at its latest value: a model
        whose prediction is not finite (its weights went NaN or inf) is never stored. It is
        replaced by the stored checkpoint if that one predicts finite values (one written before
        these checks existed may not), else by a fresh estimator, so it stops serving NaN; the
        refusal is logged and counted (:attr:`checkpoints_refused`).
        """
        model = self.partition_models.get(partition)
        if model is None or model.n_learned == self.checkpointed_at_learned:
            return False
        if self.probe and not finite_outputs(model, self.probe):
            self.checkpoints_refused += 1
            self._go_back(partition)
            return False
        self.store.save(self.model.name, self.model.version,
                        {"estimator": model.estimator, "n_learned": model.n_learned})
        self.checkpointed_at_learned = model.n_learned
        return True

    def _go_back(self, partition: int) -> None:
        broken = self.partition_models[partition]
        stored = self.store.load(self.model.name, self.model.version)
        if stored is not None and finite_outputs(OnlineModel(stored["estimator"], broken.name, broken.version),
                                                 self.probe):
            estimator, n_learned, whence = stored["estimator"], stored["n_learned"], "the stored checkpoint"
        elif self.estimator_factory is not None:
            estimator, n_learned, whence = self.estimator_factory(), 0, "a fresh estimator (no sound checkpoint)"
            self.checkpointed_at_learned = -1  # stored at the next checkpoint, over the broken one the store may hold
        else:
            log.error("%s v%s (partition %d) predicts non-finite values after %d labels: not checkpointed, and "
                      "there is no sound model to go back to", broken.name, broken.version, partition,
                      broken.n_learned)
            return
        log.error("%s v%s (partition %d) predicts non-finite values after %d labels: not checkpointed; back to %s "
                  "(%d labels)", broken.name, broken.version, partition, broken.n_learned, whence, n_learned)
        self.partition_models[partition] = OnlineModel(estimator, broken.name, broken.version, n_learned)
        self.learned_since_snapshot.add(partition)  # the state changelog gets the sound model too
