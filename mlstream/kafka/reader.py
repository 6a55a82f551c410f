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


def end_offsets(bootstrap_servers: str, topic: str) -> dict[int, int]:
    consumer = _consumer(bootstrap_servers)
    try:
        metadata = consumer.list_topics(topic, timeout=10).topics[topic]
        if metadata.error is not None:
            raise RuntimeError(f"cannot read topic {topic}: {metadata.error}")
        return {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                for p in metadata.partitions}
    finally:
        consumer.close()


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
