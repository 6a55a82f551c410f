"""Play examples as a live feed: records now, each label ``label_delay_s`` later.

The pacing and the delayed labels are plain logic over a :class:`FeedSink`, so
they run the same against Kafka (:class:`KafkaFeedSink`) and in unit tests.
An optional ``ready`` gate holds the next record back (labels keep flowing)
until it says yes: the demo's gate waits while the app is more than a few
labels behind, so how many predictions a model makes before it learned
from the earlier labels does not depend on how loaded the machine is.
"""

from __future__ import annotations

import heapq
import itertools
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Protocol

from confluent_kafka import Producer

from mlstream.kafka.clients import registry_client
from mlstream.kafka.producer import AvroProducer
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
    held_back_s: float = 0.0  # time the ready gate held records back

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


class LearningGate:
    """A ``ready`` gate for :func:`play`: ready while the consumer has learned all but ``behind`` of the records sent.

    ``learned()`` asks the consumer how many labels it has learned (None: no answer); it is
    asked only when the last answer would hold the feed back, and at most every ``poll_s``.

    >>> answers = iter([3, 8, None])
    >>> gate = LearningGate(lambda: next(answers), behind=5, poll_s=0.0)
    >>> gate(4), gate(7), gate(12), gate(13)
    (True, True, True, False)
    """

    def __init__(self, learned: Callable[[], int | None], behind: int, poll_s: float = 0.1,
                 clock: Callable[[], float] = time.monotonic):
        self.learned, self.behind, self.poll_s, self.clock = learned, behind, poll_s, clock
        self.last_learned = 0
        self.asked_at = float("-inf")

    def __call__(self, sent: int) -> bool:
        if sent - self.last_learned < self.behind:
            return True
        if self.clock() - self.asked_at >= self.poll_s:
            self.asked_at = self.clock()
            answer = self.learned()
            if answer is not None:
                self.last_learned = max(self.last_learned, answer)
        return sent - self.last_learned < self.behind


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
    **pacing,
) -> FeedStats:
    """Play a dataset's ``(features, label)`` examples as ``Record`` values (ids from dataset, seed and
    position); ``pacing`` is :func:`play_records`'s (rate, label delay, limit, progress, clocks)."""
    records = ((rid := record_id(dataset, seed, index), {"id": rid, "source": source, "features": features}, label)
               for index, (features, label) in enumerate(examples))
    return play_records(records, sink, name=dataset, stamp="event_time", **pacing)


def play_records(
    records: Iterable[tuple[str, dict, object]],
    sink: FeedSink,
    *,
    name: str,
    stamp: str | None = None,
    rate: float = 0.0,
    label_delay_s: float = 1.0,
    limit: int | None = None,
    progress: Callable[[str], None] = print,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    wall_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
    ready: Callable[[int], bool] | None = None,
) -> FeedStats:
    """Send up to ``limit`` ``(record id, record value, label)`` at ``rate`` records/s (0: as fast as
    possible), each label ``label_delay_s`` after its record; ``stamp`` names the field that gets the
    wall-clock time (epoch ms) a record is sent at, if any.

    ``ready(n)``, when given, is asked before the record that follows ``n`` records; while it
    says no the feed waits, releasing labels, and the pace resumes from there (no burst).
    """
    stats = FeedStats()
    held = DelayedLabels(label_delay_s)
    start = last_report = clock()

    def release(now: float) -> None:
        for rid, label in held.due(now):
            sink.send_label({"id": rid, "label": label, "event_time": wall_ms()})
            stats.labels += 1

    for index, (rid, record, label) in enumerate(itertools.islice(records, limit)):
        if index == 0:
            # Paced from the first example, not from the call: a dataset that takes seconds to load
            # would otherwise find every send time past and go out all at once.
            start = last_report = clock()
        if ready is not None and not ready(index):
            waited_from = clock()
            while not ready(index):
                release(clock())
                sleep(0.05)
            stats.held_back_s += clock() - waited_from
        if rate > 0:
            send_at = start + stats.held_back_s + index / rate
            while (now := clock()) < send_at:
                release(now)
                sleep(min(send_at - now, 0.05))
        now = clock()
        release(now)
        sink.send_record(record | {stamp: wall_ms()} if stamp else record)
        held.add(now, rid, label)
        stats.records += 1
        if now - last_report >= PROGRESS_EVERY_S:
            last_report = now
            progress(f"feed {name}: {stats.records} records, {stats.labels} labels, "
                     f"{stats.records / (now - start):.0f} records/s")
    while (release_at := held.next_release()) is not None:
        sleep(max(0.0, release_at - clock()))
        release(clock())
    sink.flush()
    stats.seconds = clock() - start
    progress(f"feed {name}: done, {stats.records} records and {stats.labels} labels "
             f"in {stats.seconds:.1f}s ({stats.records_per_second:.0f} records/s)")
    return stats


class KafkaFeedSink:
    """Sends records and labels as Confluent-framed Avro, keyed by record id."""

    def __init__(self, settings: Settings, producer: Producer | None = None):
        client = registry_client(settings)
        self.records = topic_codec(client, settings, settings.topics.records)
        self.labels = topic_codec(client, settings, settings.topics.labels)
        self.producer = AvroProducer(settings, producer)

    def send_record(self, record: dict) -> None:
        self.producer.send(self.records, record["id"].encode(), record)

    def send_label(self, label: dict) -> None:
        self.producer.send(self.labels, label["id"].encode(), label)

    def flush(self) -> None:
        self.producer.flush()
