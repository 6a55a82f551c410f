"""Play examples as a live feed: records now, each label ``label_delay_s`` later.

The pacing and the delayed labels are plain logic over a :class:`FeedSink`, so
they run the same against Kafka (:class:`KafkaFeedSink`) and in unit tests.
"""

from __future__ import annotations

import heapq
import itertools
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Protocol

from confluent_kafka import Producer

from mlstream.kafka.producer import AvroProducer
from mlstream.kafka.serde import registry_client
from mlstream.kafka.topics import topic_codec
from mlstream.settings import Settings

PROGRESS_EVERY_S = 2.0


class FeedSink(Protocol):
    def send_record(self, record: dict) -> None: ...

    def send_label(self, label: dict) -> None: ...

    def flush(self) -> None: ...


@dataclass
class FeedStats:
    records: int = 0
    labels: int = 0
    seconds: float = 0.0

    @property
    def records_per_second(self) -> float:
        return self.records / self.seconds if self.seconds else 0.0


class DelayedLabels:
    """Labels held back until their release time, oldest first.

    >>> held = DelayedLabels(delay_s=2.0)
    >>> held.add(now=10.0, record_id="a", label=True)
    >>> held.due(now=11.0), held.due(now=12.0)
    ([], [('a', True)])
    """

    def __init__(self, delay_s: float):
        self.delay_s = delay_s
        self._heap: list[tuple[float, int, str, object]] = []
        self._order = itertools.count()  # ties keep arrival order

    def add(self, now: float, record_id: str, label) -> None:
        heapq.heappush(self._heap, (now + self.delay_s, next(self._order), record_id, label))

    def due(self, now: float) -> list[tuple[str, object]]:
        out = []
        while self._heap and self._heap[0][0] <= now:
            _, _, record_id, label = heapq.heappop(self._heap)
            out.append((record_id, label))
        return out

    def next_release(self) -> float | None:
        return self._heap[0][0] if self._heap else None

    def __len__(self) -> int:
        return len(self._heap)


def record_id(dataset: str, seed: int, index: int) -> str:
    """Stable: the same dataset, seed and position always give the same id."""
    return f"{dataset}-{seed}-{index:09d}"


def play(
    examples: Iterable[tuple[dict[str, float], object]],
    sink: FeedSink,
    *,
    dataset: str,
    source: str,
    seed: int = 42,
    rate: float = 0.0,
    label_delay_s: float = 1.0,
    limit: int | None = None,
    progress: Callable[[str], None] = print,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    wall_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
) -> FeedStats:
    """Send up to ``limit`` examples at ``rate`` records/s (0: as fast as possible)."""
    stats = FeedStats()
    held = DelayedLabels(label_delay_s)
    start = last_report = clock()

    def release(now: float) -> None:
        for rid, label in held.due(now):
            sink.send_label({"id": rid, "label": label, "event_time": wall_ms()})
            stats.labels += 1

    for index, (features, label) in enumerate(itertools.islice(examples, limit)):
        if rate > 0:
            send_at = start + index / rate
            while (now := clock()) < send_at:
                release(now)
                sleep(min(send_at - now, 0.05))
        now = clock()
        release(now)
        rid = record_id(dataset, seed, index)
        sink.send_record({"id": rid, "source": source, "event_time": wall_ms(), "features": features})
        held.add(now, rid, label)
        stats.records += 1
        if now - last_report >= PROGRESS_EVERY_S:
            last_report = now
            progress(f"feed {dataset}: {stats.records} records, {stats.labels} labels, "
                     f"{stats.records / (now - start):.0f} records/s")
    while (release_at := held.next_release()) is not None:
        sleep(max(0.0, release_at - clock()))
        release(clock())
    sink.flush()
    stats.seconds = clock() - start
    progress(f"feed {dataset}: done, {stats.records} records and {stats.labels} labels "
             f"in {stats.seconds:.1f}s ({stats.records_per_second:.0f} records/s)")
    return stats


class KafkaFeedSink:
    """Sends records and labels as Confluent-framed Avro, keyed by record id."""

    def __init__(self, settings: Settings, producer: Producer | None = None):
        client = registry_client(settings.schema_registry_url)
        self.records = topic_codec(client, settings, settings.topics.records)
        self.labels = topic_codec(client, settings, settings.topics.labels)
        self.producer = AvroProducer(settings.bootstrap_servers, producer)

    def send_record(self, record: dict) -> None:
        self.producer.send(self.records, record["id"].encode(), record)

    def send_label(self, label: dict) -> None:
        self.producer.send(self.labels, label["id"].encode(), label)

    def flush(self) -> None:
        self.producer.flush()
