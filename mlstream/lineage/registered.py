"""Topics as Atlas entities, each linked to the Avro schema version the registry holds for it."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from confluent_kafka.schema_registry import SchemaRegistryClient

from mlstream.kafka.serde import value_subject
from mlstream.lineage.entities import Entity, avro_schema, kafka_topic
from mlstream.settings import Settings


def topics_with_schemas(settings: Settings, registry: SchemaRegistryClient, names: Iterable[str],
                        guids: Iterator[str]) -> tuple[dict[str, Entity], list[Entity]]:
    """``kafka_topic`` entities by name, and the ``avro_schema`` entity of each one's latest value schema."""
    schemas, topics = [], {}
    for topic in names:
        registered = registry.get_latest_version(value_subject(topic))
        schema = avro_schema(value_subject(topic), registered.version, registered.schema.schema_str,
                             settings.atlas_namespace, guid=next(guids))
        schemas.append(schema)
        topics[topic] = kafka_topic(topic, settings.atlas_namespace, bootstrap_servers=settings.bootstrap_servers,
                                    guid=next(guids), avro_schemas=[schema])
    return topics, schemas
