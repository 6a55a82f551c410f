"""CML's metrics calls over a :class:`~mlstream.metrics.sink.MetricsSink`.

A :class:`MetricsTracker` knows which model, build and deployment it speaks for
(CRNs from :mod:`mlstream.identifiers`) and where records go. ``track_metric``
inside a function decorated with :meth:`MetricsTracker.model_metrics` adds to
that prediction's metrics; outside one it adds to the tracker's current
experiment run.

    >>> from mlstream.metrics.sink import EmbeddedMetricsSink
    >>> tracker = MetricsTracker(EmbeddedMetricsSink(":memory:"), "iris", "1", "notebook")
    >>> @tracker.model_metrics
    ... def predict(x):
    ...     tracker.track_metric("input", x)
    ...     return x > 0.5
    >>> out = predict(0.7)
    >>> out["prediction"], out["model_deployment_crn"]
    (True, 'crn:mlstream:ml:local:model/iris/deployment/notebook')
    >>> tracker.track_delayed_metrics({"actual": True}, out["uuid"])
    >>> [row["metrics"] for row in tracker.sink.store.read()]
    [{'input': 0.7, 'actual': 1.0}]
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import time
import uuid

from mlstream.identifiers import build_crn, deployment_crn, model_crn
from mlstream.metrics.records import AGGREGATE, MERGE, ROW, MetricValueError, checked_value, metric_record
from mlstream.metrics.sink import MetricsSink

#: The metrics of the prediction being computed in this thread or task, if any.
_current_prediction: contextvars.ContextVar[dict | None] = contextvars.ContextVar("mlstream_prediction", default=None)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class MetricsTracker:
    def __init__(self, sink: MetricsSink, model_name: str, model_version: str, deployment: str, clock_ms=now_ms):
        self.sink = sink
        self.model_name = model_name
        self.model_version = model_version
        self.deployment = deployment
        self.crns = (model_crn(model_name), build_crn(model_name, model_version), deployment_crn(model_name, deployment))
        self.clock_ms = clock_ms
        self.run_uuid: str | None = None

    @property
    def model_deployment_crn(self) -> str:
        return self.crns[2]

    def track_metric(self, key: str, value) -> None:
        """Add ``key: value`` to the current prediction, or else to the current run."""
        value = checked_value(key, value)
        collected = _current_prediction.get()
        if collected is not None:
            collected[key] = value
            return
        if self.run_uuid is None:
            self.start_run()
        at = self.clock_ms()
        self.sink.write(metric_record(MERGE, self.crns, {key: value}, at, at, prediction_uuid=self.run_uuid))

    def start_run(self, params: dict | None = None, run_uuid: str | None = None) -> str:
        """Open an experiment run (a row of its own); later ``track_metric`` calls land in it."""
        self.run_uuid = run_uuid or str(uuid.uuid4())
        at = self.clock_ms()
        self.sink.write(metric_record(ROW, self.crns, params or {}, at, at, prediction_uuid=self.run_uuid))
        return self.run_uuid

    def track_delayed_metrics(self, metrics: dict, prediction_uuid: str) -> None:
        """Merge ``metrics`` (ground truth, usually) into the prediction ``prediction_uuid``.

        A uuid no prediction has (yet) is kept and counted by the store, and merged
        if its prediction arrives later; it never changes another row.
        """
        if not isinstance(prediction_uuid, str) or not prediction_uuid:
            raise MetricValueError(f"prediction_uuid must be the uuid a prediction returned, not {prediction_uuid!r}")
        at = self.clock_ms()
        self.sink.write(metric_record(MERGE, self.crns, metrics, at, at, prediction_uuid=prediction_uuid))

    def track_aggregate_metrics(self, metrics: dict, start_timestamp_ms: int, end_timestamp_ms: int,
                                model_deployment_crn: str | None = None) -> None:
        crns = self.crns if model_deployment_crn is None else (*self.crns[:2], model_deployment_crn)
        self.sink.write(metric_record(AGGREGATE, crns, metrics, start_timestamp_ms, end_timestamp_ms))

    def track_prediction(self, prediction_uuid: str, metrics: dict, start_timestamp_ms: int,
                         end_timestamp_ms: int) -> None:
        """The row of one prediction made elsewhere (the stream app names its own uuids)."""
        self.sink.write(metric_record(ROW, self.crns, metrics, start_timestamp_ms, end_timestamp_ms,
                                      prediction_uuid=prediction_uuid))

    def model_metrics(self, predict):
        """Decorate a predict function: each call gets a uuid and a row of its own metrics.

        The decorated function returns ``{"prediction": ..., "model_deployment_crn": ...,
        "uuid": ...}`` as in CML. A coroutine function (a Faust agent's helper) stays one;
        ``track_metric`` inside it lands in its own prediction even with other calls interleaved.
        """

        def finish(prediction_uuid: str, collected: dict, started: int, prediction) -> dict:
            self.track_prediction(prediction_uuid, collected, started, self.clock_ms())
            return {"prediction": prediction, "model_deployment_crn": self.model_deployment_crn,
                    "uuid": prediction_uuid}

        if inspect.iscoroutinefunction(predict):
            @functools.wraps(predict)
            async def tracked_async(*args, **kwargs):
                collected: dict = {}
                token = _current_prediction.set(collected)
                started = self.clock_ms()
                try:
                    prediction = await predict(*args, **kwargs)
                finally:
                    _current_prediction.reset(token)
                return finish(str(uuid.uuid4()), collected, started, prediction)

            return tracked_async

        @functools.wraps(predict)
        def tracked(*args, **kwargs):
            collected: dict = {}
            token = _current_prediction.set(collected)
            started = self.clock_ms()
            try:
                prediction = predict(*args, **kwargs)
            finally:
                _current_prediction.reset(token)
            return finish(str(uuid.uuid4()), collected, started, prediction)

        return tracked

    def flush(self) -> None:
        self.sink.flush()
