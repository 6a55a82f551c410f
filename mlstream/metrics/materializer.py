"""Consume the metrics topic into a :class:`~mlstream.metrics.store.MetricsStore`.

At-least-once: offsets are committed only after the store took the batch, and
the store skips a ``metric_id`` it has, so a replayed record never counts twice.
A value that does not decode goes to the dead-letter topic with the reason and
is counted; the materializer goes on. A commit the broker refuses (a restarted broker
answers NOT_COORDINATOR until the group's coordinator is back; a rebalance makes the
member unknown) is logged and left to the next batch's commit instead of killing the
materializer: the store already holds the records, and one read again is skipped by its id.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Callable

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

from mlstream.kafka import clients
from mlstream.kafka.dead_letters import dead_letter
from mlstream.kafka.reader import end_offsets
from mlstream.kafka.serde import UndecodableValue
from mlstream.kafka.topics import topic_codec
from mlstream.metrics.store import MetricsStore
from mlstream.settings import Settings

log = logging.getLogger(__name__)

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
    registry = clients.registry_client(settings)
    codecs = {"metric": topic_codec(registry, settings, topic),
              "dead_letter": topic_codec(registry, settings, settings.topics.dead_letters)}
    consumer = clients.consumer(settings, **{"group.id": materializer_group(settings),
                         "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    producer: Producer | None = None
    target = end_offsets(settings, topic) if until_caught_up else None
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
                    producer = producer or clients.producer(settings)
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
                commit(consumer)
            if progress and time.monotonic() - last_progress > 2:
                progress(stats)
                last_progress = time.monotonic()
            if target is not None and _reached(consumer, topic, target):
                break
    finally:
        consumer.close()
    return stats


def commit(consumer: Consumer) -> bool:
    """Commit the consumer's position; False, logged, when the broker refuses (any error but a fatal one)."""
    try:
        consumer.commit(asynchronous=False)
        return True
    except KafkaException as err:
        if err.args[0].fatal():
            raise
        log.warning("metrics materializer: commit refused (%s); the next batch commits again", err.args[0])
        return False


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
