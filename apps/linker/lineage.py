"""Lineage of record linkage: the feeds, the linkage process with its config version, the link topics.

Two ENTITY_CREATE_V2 hook messages on ATLAS_HOOK, with Atlas's own types:

* a feed (``mlstream linkage produce``) is a ``Process`` writing the linkage records topic;
* the linkage app is an ``mlstream_stream_process`` reading that topic and writing link
  events, entity updates and dead letters; its ``modelName`` is ``linkage:<config name>``
  and its ``modelVersion`` the config's version (the registry's, or ``file:<sha256>``), so
  a config change shows in the process's audit like a model change does.

Each topic is linked to the Avro schema version registered for it.
"""

from __future__ import annotations

import time

from confluent_kafka.schema_registry import SchemaRegistryClient

from linkage.config import LinkageConfig
from mlstream.lineage.emitter import KafkaHookEmitter, hook_producer
from mlstream.lineage.entities import PROCESS_OUTPUTS, negative_guids, reference_to, stream_process
from mlstream.lineage.hook import entity_create_v2
from mlstream.lineage.registered import topics_with_schemas
from mlstream.settings import Settings

LINEAGE_USER = "mlstream"
PROCESS = "Process"


def linkage_app_notification(settings: Settings, app_id: str, registry: SchemaRegistryClient,
                             config: LinkageConfig, config_version: str, started_at_ms: int) -> dict:
    t = settings.topics
    guids = negative_guids()
    # the reviewers' verdicts are an input only of a config whose classifier learns from them
    inputs = [t.linkage_records] + ([t.confirmed_pairs] if config.classifier else [])
    topics, schemas = topics_with_schemas(
        settings, registry, [*inputs, t.links, t.entity_updates, t.dead_letters], guids)
    process = stream_process(
        app_id,
        inputs=[topics[name] for name in inputs],
        outputs=[topics[name] for name in (t.links, t.entity_updates, t.dead_letters)],
        namespace=settings.atlas_namespace,
        model_name=f"linkage:{config.name}",
        model_version=config_version,
        guid=next(guids),
        started_at_ms=started_at_ms,
        description=f"Links records as they arrive: Fellegi-Sunter scoring learned by EM"
                    f"{', a classifier learning from confirmed pairs' if config.classifier else ''}, entity clusters. "
                    f"Config {config.name} ({config.mode}) version {config_version}. {config.description}".strip(),
    )
    return entity_create_v2([process], [*topics.values(), *schemas], user=LINEAGE_USER)


def feed_notification(settings: Settings, registry: SchemaRegistryClient, feed_name: str,
                      description: str) -> dict:
    guids = negative_guids()
    topic = settings.topics.linkage_records
    topics, schemas = topics_with_schemas(settings, registry, [topic], guids)
    feed = {
        "typeName": PROCESS,
        "guid": next(guids),
        "attributes": {"qualifiedName": f"linkage-feed:{feed_name}@{settings.atlas_namespace}",
                       "name": f"linkage-feed:{feed_name}", "description": description},
        "relationshipAttributes": {"inputs": [], "outputs": [reference_to(topics[topic], PROCESS_OUTPUTS)]},
    }
    return entity_create_v2([feed], [*topics.values(), *schemas], user=LINEAGE_USER)


def _emit(settings: Settings, key: str, notification: dict) -> None:
    emitter = KafkaHookEmitter(hook_producer(settings), settings.topics.atlas_hook, key=key)
    emitter.emit(notification)
    emitter.flush()


def emit_linkage_lineage(settings: Settings, app_id: str, registry: SchemaRegistryClient,
                         config: LinkageConfig, config_version: str) -> None:
    _emit(settings, app_id, linkage_app_notification(settings, app_id, registry, config, config_version,
                                                     started_at_ms=time.time_ns() // 1_000_000))


def emit_feed_lineage(settings: Settings, registry: SchemaRegistryClient, feed_name: str, description: str) -> None:
    _emit(settings, f"linkage-feed:{feed_name}", feed_notification(settings, registry, feed_name, description))
