"""Consume the metrics topic into a :class:`~mlstream.metrics.store.MetricsStore`.

At-least-once: offsets are committed only after the store took the batch, and
the store skips a ``metric_id`` it has, so a replayed record never counts twice.
A value that does not decode goes to the dead-letter topic with the reason and
is counted; the materializer goes on.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

from confluent_kafka import Consumer, Producer, TopicPartition

from mlstream.kafka.dead_letters import dead_letter
from mlstream.kafka.reader import end_offsets
from mlstream.kafka.serde import UndecodableValue, registry_client
from mlstream.kafka.topics import topic_codec
from mlstream.metrics.store import MetricsStore
from mlstream.settings import Settings

BATCH = 500


@dataclass
class MaterializeStats:
    read: int = 0
    stored: int = 0
    duplicates: int = 0
    dead_lettered: int = 0


def materializer_group(settings: Settings) -> str:
    return f"{settings.app_id}-metrics-materializer"


def materialize(settings: Settings, store: MetricsStore, *, until_caught_up: bool = False,
                should_stop: Callable[[], bool] = lambda: False,
                progress: Callable[[MaterializeStats], None] | None = None) -> MaterializeStats:
    """Copy metric records into ``store``; return at the topic's end (``until_caught_up``) or when told to stop."""
    topic = settings.topics.metrics
    registry = registry_client(settings.schema_registry_url)
    codecs = {"metric": topic_codec(registry, settings, topic),
              "dead_letter": topic_codec(registry, settings, settings.topics.dead_letters)}
    consumer = Consumer({"bootstrap.servers": settings.bootstrap_servers, "group.id": materializer_group(settings),
                         "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    producer: Producer | None = None
    target = end_offsets(settings.bootstrap_servers, topic) if until_caught_up else None
    stats = MaterializeStats()
    consumer.subscribe([topic])
    last_progress = time.monotonic()
    try:
        while not should_stop():
            messages = consumer.consume(BATCH, timeout=0.5)
            records = []
            for message in messages:
                if message.error() is not None:
                    continue
                stats.read += 1
                try:
                    records.append(codecs["metric"].decode(message.value()))
                except UndecodableValue as err:
                    producer = producer or Producer({"bootstrap.servers": settings.bootstrap_servers})
                    letter = dead_letter(message.topic(), message.partition(), message.offset(),
                                         message.timestamp()[1], message.key(), message.value(), message.headers(),
                                         err.kind, err.message, materializer_group(settings))
                    producer.produce(settings.topics.dead_letters, key=message.key(),
                                     value=codecs["dead_letter"].encode(letter))
                    producer.flush(30)
                    stats.dead_lettered += 1
            if records:
                new = store.put(records)
                stats.stored += new
                stats.duplicates += len(records) - new
            if messages:
                consumer.commit(asynchronous=False)
            if progress and time.monotonic() - last_progress > 2:
                progress(stats)
                last_progress = time.monotonic()
            if target is not None and _reached(consumer, topic, target):
                break
    finally:
        consumer.close()
    return stats


def _reached(consumer: Consumer, topic: str, target: dict[int, int]) -> bool:
    """Whether the group has stored everything up to ``target``: by this consumer's position, or by
    the group's committed offsets (another member, such as the app's materializer, may hold the partition)."""
    partitions = [TopicPartition(topic, p) for p in target if target[p] > 0]
    if not partitions:
        return True
    positions = {tp.partition: tp.offset for tp in consumer.position(partitions)}
    committed = {tp.partition: tp.offset for tp in consumer.committed(partitions, timeout=10)}
    return all(max(positions.get(p.partition, -1), committed.get(p.partition, -1)) >= target[p.partition]
               for p in partitions)
