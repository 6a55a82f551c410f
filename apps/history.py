"""What the dashboards read back from the topics when their app starts again.

Both apps report their figures to the metrics topic every few seconds as aggregate records
(CML's ``track_aggregate_metrics``); :func:`read_reports` finds an app's reports of the last
day there. Per-prediction rows share that topic; they carry their prediction's uuid as
key, the aggregates none, so only the aggregates are decoded.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from confluent_kafka import Message

from mlstream.kafka.reader import end_offsets, iter_range, offsets_at
from mlstream.kafka.topics import topic_codec
from mlstream.metrics.records import AGGREGATE
from mlstream.settings import Settings

READ_TIMEOUT_S = 600.0  # for a whole day of the metrics topic, read off the app's event loop


def since(settings: Settings, topic: str, since_ms: int) -> Iterator[Message]:
    """Every message ``topic`` got since ``since_ms`` (by its timestamp), one at a time (a day can be millions)."""
    return iter_range(settings, topic, offsets_at(settings, topic, since_ms), end_offsets(settings, topic),
                      timeout_s=READ_TIMEOUT_S)


def ours(deployment_crn: str, app_id: str) -> bool:
    """A deployment of this app: its champion's or its shadow's.

    >>> ours("crn:mlstream:ml:local:model/m/deployment/app", "app"), ours(".../deployment/app-2", "app")
    (True, False)
    """
    return deployment_crn.endswith((f"/deployment/{app_id}", f"/deployment/{app_id}-shadow"))


def read_reports(settings: Settings, registry, app_id: str, since_ms: int) -> list[dict]:
    """The aggregate metric records of ``app_id``'s deployments since ``since_ms``, decoded, in topic order."""
    codec = topic_codec(registry, settings, settings.topics.metrics)
    reports = []
    for message in since(settings, settings.topics.metrics, since_ms):
        if message.key() is not None:  # a prediction's row or its label: not a report
            continue
        record = codec.decode(message.value())
        if record["kind"] == AGGREGATE and ours(record["model_deployment_crn"], app_id):
            reports.append(record)
    return reports


def ms_ago(seconds: int) -> int:
    """The epoch milliseconds ``seconds`` ago."""
    return time.time_ns() // 1_000_000 - seconds * 1000
