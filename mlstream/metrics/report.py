"""Showing metrics to people: CML rows as a table, and a live tail of the metrics topic."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Callable


from mlstream.kafka import clients
from mlstream.kafka.serde import UndecodableValue

from mlstream.kafka.topics import topic_codec
from mlstream.settings import Settings


def short_crn(crn: str | None) -> str:
    """``crn:mlstream:ml:local:model/m/deployment/d`` -> ``m/deployment/d``."""
    if not crn:
        return "-"
    return crn.split(":model/", 1)[-1]


def _time(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def _value(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def format_rows(rows: list[dict], max_metrics: int = 8) -> str:
    """CML rows as a plain table, one line each; metrics as ``name=value`` pairs."""
    if not rows:
        return "(no metrics)"
    lines = [f"{'end (UTC)':19}  {'deployment':40}  {'prediction':36}  metrics"]
    for row in rows:
        metrics = " ".join(f"{k}={_value(v)}" for k, v in list(row["metrics"].items())[:max_metrics])
        more = len(row["metrics"]) - max_metrics
        lines.append(f"{_time(row['endTimeStampMs']):19}  {short_crn(row['modelDeploymentCrn']):40}  "
                     f"{row['predictionUuid'] or '(aggregate)':36}  {metrics}{f' (+{more})' if more > 0 else ''}")
    return "\n".join(lines)


def tail(settings: Settings, emit: Callable[[dict], None], from_beginning: bool = False,
         should_stop: Callable[[], bool] = lambda: False) -> int:
    """Print metric records as they arrive on the metrics topic; return how many were shown."""
    codec = topic_codec(clients.registry_client(settings), settings, settings.topics.metrics)
    consumer = clients.consumer(settings, **{"group.id": f"mlstream-tail-{uuid.uuid4().hex}",
                                             "enable.auto.commit": False,
                                             "auto.offset.reset": "earliest" if from_beginning else "latest"})
    consumer.subscribe([settings.topics.metrics])
    shown = 0
    try:
        while not should_stop():
            message = consumer.poll(0.5)
            if message is None or message.error() is not None:
                continue
            try:
                emit(codec.decode(message.value()))
            except UndecodableValue as err:
                emit({"undecodable": err.kind, "offset": message.offset(), "reason": err.message})
            shown += 1
    finally:
        consumer.close()
    return shown


def format_record(record: dict) -> str:
    if "undecodable" in record:
        return f"offset {record['offset']}: undecodable ({record['undecodable']}): {record['reason']}"
    end = record["end_timestamp_ms"]
    end_ms = int(end.timestamp() * 1000) if not isinstance(end, int) else end
    metrics = " ".join(f"{k}={_value(v)}" for k, v in record["metrics"].items())
    return (f"{_time(end_ms)}  {record.get('kind', 'aggregate'):9}  {short_crn(record['model_deployment_crn'])}  "
            f"{record['prediction_uuid'] or ''}  {metrics}")


