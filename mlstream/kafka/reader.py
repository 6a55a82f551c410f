"""Read back what landed on a topic: offsets now, and the messages between two offset sets.

Used by the demo's summary and by tests, which count from Kafka itself rather
than trusting the app's own counters.
"""

from __future__ import annotations

import time
import uuid

from confluent_kafka import Consumer, Message, TopicPartition


def _consumer(bootstrap_servers: str) -> Consumer:
    # A throwaway group that never commits: reading back must not move anyone's offsets.
    return Consumer({"bootstrap.servers": bootstrap_servers, "group.id": f"mlstream-reader-{uuid.uuid4().hex}",
                     "enable.auto.commit": False})


class TopicEnds:
    """The end offsets of one topic, read as often as wanted through one consumer.

    A benchmark that watches a topic fill reads them many times a second: a consumer
    for each read would cost more than the read.
    """

    def __init__(self, bootstrap_servers: str, topic: str):
        self.consumer = _consumer(bootstrap_servers)
        try:
            metadata = self.consumer.list_topics(topic, timeout=10).topics[topic]
            if metadata.error is not None:
                raise RuntimeError(f"cannot read topic {topic}: {metadata.error}")
        except BaseException:
            self.consumer.close()
            raise
        self.partitions = [TopicPartition(topic, p) for p in metadata.partitions]

    def read(self) -> dict[int, int]:
        return {tp.partition: self.consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in self.partitions}

    def close(self) -> None:
        self.consumer.close()

    def __enter__(self) -> "TopicEnds":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def end_offsets(bootstrap_servers: str, topic: str) -> dict[int, int]:
    with TopicEnds(bootstrap_servers, topic) as ends:
        return ends.read()


def read_range(bootstrap_servers: str, topic: str, start: dict[int, int], end: dict[int, int],
               timeout_s: float = 60.0) -> list[Message]:
    """Every message from ``start`` (inclusive) to ``end`` (exclusive), per partition."""
    wanted = {p: end[p] for p in end if end[p] > start.get(p, 0)}
    consumer = _consumer(bootstrap_servers)
    assigned = [TopicPartition(topic, p, start.get(p, 0)) for p in wanted]
    consumer.assign(assigned)
    out: list[Message] = []
    deadline = time.monotonic() + timeout_s
    try:
        # Done when every partition's position reaches its end: offsets without a message
        # (transaction markers) are passed over, not waited for.
        while time.monotonic() < deadline and any(
                tp.offset < wanted[tp.partition] for tp in consumer.position(assigned)):
            msg = consumer.poll(0.2)
            if msg is not None and msg.error() is None and msg.offset() < wanted[msg.partition()]:
                out.append(msg)
    finally:
        consumer.close()
    return out


def read_all(bootstrap_servers: str, topic: str) -> list[Message]:
    return read_range(bootstrap_servers, topic, {}, end_offsets(bootstrap_servers, topic))
