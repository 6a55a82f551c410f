"""Read back what a topic holds: its offsets now, and the messages between two offset sets.

The one offset-range reader: model builds and their reproduction read their exact ranges
with it, the demo's summary and the benchmarks count from Kafka with it, and so do the
tests, rather than trusting the apps' own counters.
"""

from __future__ import annotations

import time
import uuid

from confluent_kafka import Consumer, Message, TopicPartition

from mlstream.errors import UserError


def _consumer(bootstrap_servers: str) -> Consumer:
    # A throwaway group that never commits: reading back must not move anyone's offsets.
    return Consumer({"bootstrap.servers": bootstrap_servers, "group.id": f"mlstream-reader-{uuid.uuid4().hex}",
                     "enable.auto.commit": False})


def _partitions(consumer: Consumer, topic: str) -> list[TopicPartition]:
    metadata = consumer.list_topics(topic, timeout=10).topics[topic]
    if metadata.error is not None:
        raise UserError(f"cannot read topic {topic}: {metadata.error}")
    return [TopicPartition(topic, p) for p in metadata.partitions]


def _watermarks(consumer: Consumer, topic: str) -> dict[int, tuple[int, int]]:
    return {tp.partition: consumer.get_watermark_offsets(tp, timeout=10) for tp in _partitions(consumer, topic)}


def watermarks(bootstrap_servers: str, topic: str) -> tuple[dict[int, int], dict[int, int]]:
    """(first, end) offsets of every partition of ``topic``: retention has deleted what is before the first."""
    consumer = _consumer(bootstrap_servers)
    try:
        marks = _watermarks(consumer, topic)
    finally:
        consumer.close()
    return {p: low for p, (low, _) in marks.items()}, {p: high for p, (_, high) in marks.items()}


def end_offsets(bootstrap_servers: str, topic: str) -> dict[int, int]:
    return watermarks(bootstrap_servers, topic)[1]


class TopicEnds:
    """The end offsets of one topic, read as often as wanted through one consumer.

    A benchmark that watches a topic fill reads them many times a second: a consumer
    for each read would cost more than the read.
    """

    def __init__(self, bootstrap_servers: str, topic: str):
        self.consumer = _consumer(bootstrap_servers)
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


def read_range(bootstrap_servers: str, topic: str, start: dict[int, int], end: dict[int, int],
               timeout_s: float = 60.0) -> list[Message]:
    """Every message Kafka holds from ``start`` (inclusive) to ``end`` (exclusive), per partition,
    in partition then offset order; an error, not a short list, when they do not arrive in time.

    Offsets retention has deleted are not there to read: a partition is read from its first
    offset then (a reader that needs every offset, as a build does, checks :func:`watermarks`).
    """
    consumer = _consumer(bootstrap_servers)
    try:
        marks = _watermarks(consumer, topic) if end else {}
        first = {p: max(start.get(p, 0), marks[p][0]) for p in end if p in marks}
        wanted = {p: end[p] for p in first if end[p] > first[p]}
        assigned = [TopicPartition(topic, p, first[p]) for p in wanted]
        consumer.assign(assigned)
        out: list[Message] = []
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
                out.append(msg)
    finally:
        consumer.close()
    return sorted(out, key=lambda m: (m.partition(), m.offset()))


def read_all(bootstrap_servers: str, topic: str) -> list[Message]:
    return read_range(bootstrap_servers, topic, {}, end_offsets(bootstrap_servers, topic))
