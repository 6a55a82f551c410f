"""Read back what a topic holds: its offsets now, and the messages between two offset sets.

The one offset-range reader: model builds and their reproduction read their exact ranges
with it, the demo's summary and the benchmarks count from Kafka with it, and so do the
tests, rather than trusting the apps' own counters.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from mlstream.errors import AccessDenied, UserError
from mlstream.kafka import clients
from mlstream.settings import Settings


def _consumer(settings: Settings) -> Consumer:
    # A throwaway group that never commits: reading back must not move anyone's offsets. Only what
    # committed: the scorer writes its outputs in transactions, and an aborted batch was never there.
    return clients.consumer(settings, **{"group.id": f"mlstream-reader-{uuid.uuid4().hex}",
                                         "enable.auto.commit": False, "isolation.level": "read_committed"})


def _partitions(consumer: Consumer, topic: str) -> list[TopicPartition]:
    metadata = consumer.list_topics(topic, timeout=10).topics[topic]
    if metadata.error is not None:
        if metadata.error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED:
            raise AccessDenied("DESCRIBE", "topic", topic)
        if metadata.error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
            raise UserError(f"topic {topic} does not exist: run `mlstream init`")
        raise UserError(f"cannot read topic {topic}: {metadata.error}")
    return [TopicPartition(topic, p) for p in metadata.partitions]


#: How long a partition may have no leader (a topic just made, a broker restarting) before reading gives up.
LEADER_WAIT_S = 30.0
#: What the broker answers while a partition's leader is being elected; confluent-kafka does not mark
#: them retriable when a watermark query raises them.
NO_LEADER_YET = {KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE}


def _watermarks(consumer: Consumer, topic: str) -> dict[int, tuple[int, int]]:
    return {tp.partition: _partition_watermarks(consumer, tp) for tp in _partitions(consumer, topic)}


def _partition_watermarks(consumer: Consumer, tp: TopicPartition, wait_s: float = LEADER_WAIT_S,
                          retry_s: float = 0.2) -> tuple[int, int]:
    """The partition's (low, high) offsets, waiting while its leader is elected.

    A topic made a moment ago has partitions whose leader is not elected yet: the broker answers
    NOT_LEADER_FOR_PARTITION (``mlstream models list`` right after it created the registry's topic
    failed with a traceback on that).

    >>> class Electing:
    ...     calls = 0
    ...     def get_watermark_offsets(self, tp, timeout):
    ...         self.calls += 1
    ...         if self.calls < 3:
    ...             raise KafkaException(KafkaError(KafkaError.NOT_LEADER_FOR_PARTITION))
    ...         return (0, 5)
    >>> _partition_watermarks(Electing(), TopicPartition("t", 0), retry_s=0)
    (0, 5)
    """
    deadline = time.monotonic() + wait_s
    while True:
        try:
            return consumer.get_watermark_offsets(tp, timeout=10)
        except KafkaException as err:
            error = err.args[0]
            if not (error.retriable() or error.code() in NO_LEADER_YET) or time.monotonic() > deadline:
                raise
            time.sleep(retry_s)


def watermarks(settings: Settings, topic: str) -> tuple[dict[int, int], dict[int, int]]:
    """(first, end) offsets of every partition of ``topic``: retention has deleted what is before the first."""
    consumer = _consumer(settings)
    try:
        marks = _watermarks(consumer, topic)
    finally:
        consumer.close()
    return {p: low for p, (low, _) in marks.items()}, {p: high for p, (_, high) in marks.items()}


def end_offsets(settings: Settings, topic: str) -> dict[int, int]:
    return watermarks(settings, topic)[1]


def offsets_at(settings: Settings, topic: str, at_ms: int) -> dict[int, int]:
    """Per partition, the first offset whose timestamp is at or after ``at_ms`` (the end offset if none is).

    With :func:`iter_range` up to :func:`end_offsets`, it reads back what a topic got since a time.
    """
    consumer = _consumer(settings)
    try:
        marks = _watermarks(consumer, topic)
        found = consumer.offsets_for_times([TopicPartition(topic, p, at_ms) for p in marks], timeout=10)
    finally:
        consumer.close()
    return {tp.partition: tp.offset if tp.offset >= 0 else marks[tp.partition][1] for tp in found}


class TopicEnds:
    """The end offsets of one topic, read as often as wanted through one consumer.

    A benchmark that watches a topic fill reads them many times a second: a consumer
    for each read would cost more than the read.
    """

    def __init__(self, settings: Settings, topic: str):
        self.consumer = _consumer(settings)
        try:
            self.partitions = _partitions(self.consumer, topic)
        except BaseException:
            self.consumer.close()
            raise

    def read(self) -> dict[int, int]:
        return {tp.partition: self.consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in self.partitions}

    def close(self) -> None:
        self.consumer.close()

    def __enter__(self) -> "TopicEnds":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_range(settings: Settings, topic: str, start: dict[int, int], end: dict[int, int],
               timeout_s: float = 60.0) -> list[Message]:
    """Every message Kafka holds from ``start`` (inclusive) to ``end`` (exclusive), per partition,
    in partition then offset order; an error, not a short list, when they do not arrive in time.

    Offsets retention has deleted are not there to read: a partition is read from its first
    offset then (a reader that needs every offset, as a build does, checks :func:`watermarks`).
    """
    return sorted(iter_range(settings, topic, start, end, timeout_s), key=lambda m: (m.partition(), m.offset()))


def iter_range(settings: Settings, topic: str, start: dict[int, int], end: dict[int, int],
               timeout_s: float = 60.0) -> Iterator[Message]:
    """The messages of :func:`read_range` one at a time as they arrive (partitions interleaved, each in
    offset order), for a range too long to hold: a reader that keeps a few of them (the dashboards'
    read-back of a day of the metrics topic) needs memory for those only."""
    consumer = _consumer(settings)
    try:
        marks = _watermarks(consumer, topic) if end else {}
        first = {p: max(start.get(p, 0), marks[p][0]) for p in end if p in marks}
        wanted = {p: end[p] for p in first if end[p] > first[p]}
        assigned = [TopicPartition(topic, p, first[p]) for p in wanted]
        consumer.assign(assigned)
        deadline = time.monotonic() + timeout_s
        # Done when every partition's position reaches its end: offsets without a message
        # (transaction markers, compacted records) are passed over, not waited for.
        while behind := [tp for tp in consumer.position(assigned) if tp.offset < wanted[tp.partition]]:
            if time.monotonic() > deadline:
                raise UserError(f"timed out after {timeout_s:.0f}s reading {topic} partitions "
                                f"{', '.join(str(tp.partition) for tp in behind)} up to offsets "
                                f"{', '.join(str(wanted[tp.partition]) for tp in behind)}: is Kafka up?")
            msg = consumer.poll(0.2)
            if msg is not None and msg.error() is None and msg.offset() < wanted[msg.partition()]:
                yield msg
    finally:
        consumer.close()


def read_all(settings: Settings, topic: str) -> list[Message]:
    return read_range(settings, topic, {}, end_offsets(settings, topic))
