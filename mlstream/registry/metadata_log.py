"""The registry's metadata log on a compacted Kafka topic, and the registry opened on it.

Keys are CRNs; a compacted topic keeps the newest value of each key forever, so every app
instance that reads the topic to its end sees the same registry.
"""

from __future__ import annotations

import json


from mlstream.kafka import clients
from mlstream.kafka.reader import read_all
from mlstream.kafka.topics import create_topics, project_topics
from mlstream.registry.registry import Registry
from mlstream.settings import Settings


class KafkaMetadataLog:
    """A :class:`~mlstream.registry.registry.MetadataLog` on the registry topic."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.topic = settings.topics.model_registry
        self.producer = clients.producer(settings, **{"enable.idempotence": True})

    def append(self, key: str, value: dict) -> None:
        errors = []
        self.producer.produce(self.topic, key=key.encode(), value=json.dumps(value, sort_keys=True).encode(),
                              on_delivery=lambda err, msg: errors.append(err) if err else None)
        if self.producer.flush(30) or errors:
            raise RuntimeError(f"registry update {key} not delivered to {self.topic}: {errors or 'timed out'}")

    def read(self) -> dict[str, dict]:
        entries: dict[str, dict] = {}
        for message in sorted(read_all(self.settings, self.topic), key=lambda m: m.offset()):
            if message.value() is not None:
                entries[message.key().decode()] = json.loads(message.value())
        return entries


def ensure_topics(settings: Settings) -> None:
    """Create the registry and deployments topics if missing (auto-creation would not make one compacted)."""
    mine = {settings.topics.model_registry, settings.topics.deployments}
    create_topics(clients.admin(settings),
                  [s for s in project_topics(settings) if s.name in mine], say=lambda line: None)


def open_registry(settings: Settings) -> Registry:
    ensure_topics(settings)
    return Registry(KafkaMetadataLog(settings))
