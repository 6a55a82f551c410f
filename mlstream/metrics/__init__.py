"""Cloudera Machine Learning's metrics API, on a Kafka stream.

The module-level calls are CML's (``cml.metrics_v1`` / ``cdsw``), with the same
names, arguments and ``read_metrics`` shape. They use one default tracker,
built from the ``MLSTREAM_*`` settings (model, version, app id as deployment)
that writes to the metrics topic; :func:`configure` replaces it, e.g. with an
:class:`EmbeddedMetricsSink` where there is no broker.

    import mlstream.metrics as metrics

    @metrics.model_metrics
    def predict(args):
        metrics.track_metric("input", args["x"])
        return args["x"] > 0.5

    out = predict({"x": 0.7})            # {"prediction": True, "model_deployment_crn": ..., "uuid": ...}
    metrics.track_delayed_metrics({"actual": True}, out["uuid"])
    metrics.flush()
    metrics.read_metrics(model_deployment_crn=out["model_deployment_crn"])["metrics"]

Identifiers (``modelCrn``, ``modelBuildCrn``, ``modelDeploymentCrn``) follow
:mod:`mlstream.identifiers`: ``crn:mlstream:ml:local:model/<name>``, ``.../build/<version>``,
``.../deployment/<app id or run name>``.
"""

from __future__ import annotations

import functools
import inspect

from mlstream.metrics.records import MetricValueError
from mlstream.metrics.sink import EmbeddedMetricsSink, KafkaMetricsSink, MetricsSink
from mlstream.metrics.store import MetricsStore, PostgresMetricsStore, SqliteMetricsStore, open_store
from mlstream.metrics.tracking import MetricsTracker, now_ms
from mlstream.settings import Settings

__all__ = [
    "EmbeddedMetricsSink", "KafkaMetricsSink", "MetricValueError", "MetricsSink", "MetricsStore", "MetricsTracker",
    "PostgresMetricsStore", "SqliteMetricsStore", "configure", "flush", "model_metrics", "open_store",
    "read_metrics", "track_aggregate_metrics", "track_delayed_metrics", "track_metric", "tracker",
]

_default: dict = {}


def configure(tracker: MetricsTracker | None = None, store: MetricsStore | None = None) -> None:
    """Set the tracker the module-level calls use, and/or the store ``read_metrics`` reads."""
    if tracker is not None:
        _default["tracker"] = tracker
    if store is not None:
        _default["store"] = store


def tracker() -> MetricsTracker:
    if "tracker" not in _default:
        settings = Settings.from_env()
        _default["tracker"] = MetricsTracker(KafkaMetricsSink(settings), settings.model, settings.model_version,
                                             settings.app_id)
    return _default["tracker"]


def _store() -> MetricsStore:
    if "store" not in _default:
        _default["store"] = open_store(Settings.from_env().metrics_store_url)
    return _default["store"]


def track_metric(key: str, value) -> None:
    tracker().track_metric(key, value)


def track_delayed_metrics(metrics: dict, prediction_uuid: str) -> None:
    tracker().track_delayed_metrics(metrics, prediction_uuid)


def track_aggregate_metrics(metrics: dict, start_timestamp_ms: int, end_timestamp_ms: int,
                            model_deployment_crn: str | None = None) -> None:
    tracker().track_aggregate_metrics(metrics, start_timestamp_ms, end_timestamp_ms, model_deployment_crn)


def model_metrics(predict):
    """CML's decorator: resolves the default tracker at call time, so ``configure`` may come later."""

    if inspect.iscoroutinefunction(predict):
        @functools.wraps(predict)
        async def tracked_async(*args, **kwargs):
            return await tracker().model_metrics(predict)(*args, **kwargs)

        return tracked_async

    @functools.wraps(predict)
    def tracked(*args, **kwargs):
        return tracker().model_metrics(predict)(*args, **kwargs)

    return tracked


def flush() -> None:
    """Wait until everything tracked so far has reached the metrics topic."""
    tracker().flush()


def read_metrics(model_deployment_crn: str | None = None, start_timestamp_ms: int | None = None,
                 end_timestamp_ms: int | None = None, model_crn: str | None = None,
                 model_build_crn: str | None = None) -> dict:
    """Rows in CML's shape: ``{"metrics": [{"modelDeploymentCrn", ..., "metrics": {...}}]}``.

    ``start_timestamp_ms`` defaults to 0 and ``end_timestamp_ms`` to now: a row
    counts when its window lies inside [start, end].
    """
    end = now_ms() if end_timestamp_ms is None else end_timestamp_ms
    rows = _store().read(model_deployment_crn=model_deployment_crn, start_timestamp_ms=start_timestamp_ms or 0,
                         end_timestamp_ms=end, model_crn=model_crn, model_build_crn=model_build_crn)
    return {"metrics": rows}
