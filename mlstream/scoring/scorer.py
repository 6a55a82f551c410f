"""The scoring logic of the stream app, free of Kafka so it can be tested alone.

A record is scored at once; what is needed to learn from it later (features and
the prediction) waits in a table until its label arrives. A label that comes
before its record waits too, so the model learns from each record exactly once,
and never before both the record has been scored and its label has arrived.
"""

from __future__ import annotations

import time
import uuid
from typing import Callable

from mlstream.scoring.model_store import ModelStore
from mlstream.scoring.monitoring import Alert, ModelMonitor
from mlstream.scoring.online_model import OnlineModel, Prediction


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def prediction_value(model: OnlineModel, prediction: Prediction, record_id: str, topic: str, partition: int,
                     offset: int, record_time_ms: int, scored_at: int, latency_ms: float) -> dict:
    """The value of the ``prediction`` schema for one scored record, under a new prediction id."""
    return {
        "prediction_id": str(uuid.uuid4()),
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
    }


class StreamScorer:
    def __init__(self, model: OnlineModel, store: ModelStore, clock_ms: Callable[[], int] = now_ms,
                 monitor: ModelMonitor | None = None):
        self.model = model
        self.store = store
        self.monitor = monitor or ModelMonitor(model.name, model.version)
        self.clock_ms = clock_ms
        self.checkpointed_at_learned = model.n_learned

    @classmethod
    def restore(cls, estimator_factory: Callable[[], object], name: str, version: str, store: ModelStore,
                **monitor_options) -> "StreamScorer":
        """Continue from the stored checkpoint of this model version, or start fresh.

        ``monitor_options`` go to this version's :class:`ModelMonitor` (thresholds, drift features).
        """
        checkpoint = store.load(name, version)
        if checkpoint is None:
            model = OnlineModel(estimator_factory(), name, version)
        else:
            model = OnlineModel(checkpoint["estimator"], name, version, checkpoint["n_learned"])
        return cls(model, store, monitor=ModelMonitor(name, version, **monitor_options))

    def score(
        self, record: dict, topic: str, partition: int, offset: int, record_time_ms: int, arrived: float
    ) -> tuple[dict, dict]:
        """Return the prediction record and the pending entry that waits for the label.

        ``arrived`` is the ``time.perf_counter()`` reading taken when the message
        reached the app, so the latency covers decoding as well as scoring.
        """
        prediction = self.model.predict(record["features"])
        scored_at = self.clock_ms()
        latency_ms = (time.perf_counter() - arrived) * 1000.0
        self.monitor.on_scored(latency_ms)
        out = prediction_value(self.model, prediction, record["id"], topic, partition, offset, record_time_ms,
                               scored_at, latency_ms)
        pending = {
            "features": record["features"],
            "prediction_id": out["prediction_id"],
            "predicted_label": prediction.label,
            "score": prediction.score,
            "model_version": self.model.version,
            "scored_at": scored_at,
        }
        return out, pending

    def learn(self, pending: dict, label, label_time_ms: int) -> list[Alert]:
        """The label met its prediction: judge the prediction, then learn; return any alerts raised."""
        alerts = self.monitor.on_outcome(pending["predicted_label"], label,
                                         max(0, label_time_ms - pending["scored_at"]),
                                         score=pending.get("score"), features=pending["features"])
        self.model.learn(pending["features"], label)
        return alerts

    def checkpoint(self) -> bool:
        """Save the model if it learned since the last save; return whether it saved."""
        if self.model.n_learned == self.checkpointed_at_learned:
            return False
        self.store.save(self.model.name, self.model.version,
                        {"estimator": self.model.estimator, "n_learned": self.model.n_learned})
        self.checkpointed_at_learned = self.model.n_learned
        return True
