"""The lineage the stream app reports when it starts: its topics, their schemas, and itself.

One ENTITY_CREATE_V2 hook message on ATLAS_HOOK: records and labels topics ->
the scoring process -> predictions, metrics and dead-letter topics, each topic
linked to the Avro schema version registered for it.
"""

from __future__ import annotations

import time

from confluent_kafka.schema_registry import SchemaRegistryClient

from mlstream.lineage.emitter import KafkaHookEmitter
from mlstream.lineage.entities import avro_schema, kafka_topic, negative_guids, stream_process
from mlstream.lineage.hook import entity_create_v2
from mlstream.serde import value_subject
from mlstream.settings import Settings

LINEAGE_USER = "mlstream"


def startup_notification(settings: Settings, registry: SchemaRegistryClient, started_at_ms: int) -> dict:
    topics = settings.topics
    ns = settings.atlas_namespace
    guids = negative_guids()
    schemas, topic_entities = [], {}
    for topic in (topics.records, topics.labels, topics.predictions, topics.metrics, topics.dead_letters):
        registered = registry.get_latest_version(value_subject(topic))
        schema = avro_schema(value_subject(topic), registered.version, registered.schema.schema_str, ns,
                             guid=next(guids))
        schemas.append(schema)
        topic_entities[topic] = kafka_topic(topic, ns, bootstrap_servers=settings.bootstrap_servers,
                                            guid=next(guids), avro_schemas=[schema])
    process = stream_process(
        settings.app_id,
        inputs=[topic_entities[topics.records], topic_entities[topics.labels]],
        outputs=[topic_entities[t] for t in (topics.predictions, topics.metrics, topics.dead_letters)],
        namespace=ns,
        model_name=settings.model,
        model_version=settings.model_version,
        guid=next(guids),
        started_at_ms=started_at_ms,
        description="Scores records with an online river model and learns from delayed labels.",
    )
    return entity_create_v2([process], [*topic_entities.values(), *schemas], user=LINEAGE_USER)


def emit_startup_lineage(settings: Settings, registry: SchemaRegistryClient) -> None:
    emitter = KafkaHookEmitter({"bootstrap.servers": settings.bootstrap_servers}, settings.topics.atlas_hook,
                               key=settings.app_id)
    emitter.emit(startup_notification(settings, registry, started_at_ms=time.time_ns() // 1_000_000))
    emitter.flush()
