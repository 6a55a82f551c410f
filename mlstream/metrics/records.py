"""Metric records: what travels on the metrics topic, and CML's row shape for reading back.

A record is one of three kinds:

- ``row`` opens a row named by ``prediction_uuid``: one prediction (``model_metrics``)
  or one experiment run;
- ``merge`` merges its metrics into the row with the same ``prediction_uuid``
  (``track_delayed_metrics``, run metrics tracked later); later records win a key;
- ``aggregate`` is a row of its own over a time window (``track_aggregate_metrics``).

Values are numbers or strings, as in CML:

    >>> checked_metrics({"accuracy": 0.9, "n": 3, "label": "spam", "ok": True})
    {'accuracy': 0.9, 'n': 3.0, 'label': 'spam', 'ok': 1.0}
    >>> try:
    ...     checked_metrics({"accuracy": [0.9]})
    ... except MetricValueError as err:
    ...     print(err)
    metric 'accuracy': [0.9] is a list, not a number or a string
"""

from __future__ import annotations

import math
import numbers
from datetime import datetime

from mlstream.errors import UserError
from mlstream.identifiers import uuid4_text

ROW, MERGE, AGGREGATE = "row", "merge", "aggregate"
KINDS = (ROW, MERGE, AGGREGATE)
#: CML keeps up to 50 metrics per run; we hold every record to the same bound.
MAX_METRICS_PER_RECORD = 50


class MetricValueError(UserError, ValueError):
    """A metric whose key or value the metrics API cannot take."""


def checked_value(key, value) -> float | str:
    if not isinstance(key, str) or not key:
        raise MetricValueError(f"metric key {key!r} must be a non-empty string")
    if isinstance(value, str):
        return value
    # bool and numpy scalars are Reals too; the ABC check is slow, so plain floats are let through first
    if type(value) is float or isinstance(value, numbers.Real):
        number = float(value)
        if math.isnan(number) or math.isinf(number):
            raise MetricValueError(f"metric {key!r}: {value} is not a finite number")
        return number
    raise MetricValueError(f"metric {key!r}: {value!r} is a {type(value).__name__}, not a number or a string")


def checked_metrics(metrics) -> dict[str, float | str]:
    if not isinstance(metrics, dict):
        raise MetricValueError(f"metrics must be a dict of name -> number or string, not {type(metrics).__name__}")
    if len(metrics) > MAX_METRICS_PER_RECORD:
        raise MetricValueError(f"{len(metrics)} metrics in one call; at most {MAX_METRICS_PER_RECORD}")
    return {key: checked_value(key, value) for key, value in metrics.items()}


def checked_timestamp(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        if isinstance(value, numbers.Real) and float(value).is_integer():
            return int(value)
        raise MetricValueError(f"{name} must be epoch milliseconds as an integer, not {value!r}")
    return int(value)


def metric_record(kind: str, crns: tuple[str, str, str], metrics: dict, start_ms: int, end_ms: int,
                  prediction_uuid: str | None = None) -> dict:
    """A value for the metrics topic (``mlstream/schemas/metric.avsc``), checked."""
    if kind not in KINDS:
        raise ValueError(f"unknown metric record kind {kind!r}")
    if kind in (ROW, MERGE) and not prediction_uuid:
        raise MetricValueError(f"a {kind} metric record needs a prediction uuid")
    start_ms, end_ms = checked_timestamp("start_timestamp_ms", start_ms), checked_timestamp("end_timestamp_ms", end_ms)
    if end_ms < start_ms:
        raise MetricValueError(f"end_timestamp_ms {end_ms} is before start_timestamp_ms {start_ms}")
    model_crn, build_crn, deployment_crn = crns
    return {
        "metric_id": uuid4_text(),
        "kind": kind,
        "model_crn": model_crn,
        "model_build_crn": build_crn,
        "model_deployment_crn": deployment_crn,
        "prediction_uuid": prediction_uuid,
        "start_timestamp_ms": start_ms,
        "end_timestamp_ms": end_ms,
        "metrics": checked_metrics(metrics),
    }


def plain_ms(value) -> int:
    """timestamp-millis fields decode to datetimes; stores keep epoch milliseconds."""
    if isinstance(value, datetime):
        return round(value.timestamp() * 1000)
    return int(value)


def cml_row(model_crn: str, build_crn: str, deployment_crn: str, start_ms: int, end_ms: int,
            prediction_uuid: str | None, metrics: dict) -> dict:
    """One entry of ``read_metrics()["metrics"]``, named exactly as CML names it."""
    return {
        "modelDeploymentCrn": deployment_crn,
        "modelBuildCrn": build_crn,
        "modelCrn": model_crn,
        "startTimeStampMs": start_ms,
        "endTimeStampMs": end_ms,
        "predictionUuid": prediction_uuid,
        "metrics": metrics,
    }
