"""Lineage of secure datasets: each ``<topic>.secure.<team>`` derived from its raw topic by a process naming the policy.

One ENTITY_CREATE_V2 hook message on ATLAS_HOOK per team view the processor starts writing: an
``mlstream_stream_process`` whose ``modelName`` is ``secure-dataset:<team>`` and whose
``modelVersion`` is the policy version (``security.hive@v3 (policyVersion 7)``), reading the raw
topic and writing the team's topic, each topic linked to its registered Avro schema. A policy
change is a new version of that process, as a model change is for the scorer.
"""

from __future__ import annotations

import time

from confluent_kafka.schema_registry import SchemaRegistryClient

from mlstream.lineage.emitter import KafkaHookEmitter, hook_producer
from mlstream.lineage.entities import negative_guids, stream_process
from mlstream.lineage.hook import entity_create_v2
from mlstream.lineage.registered import topics_with_schemas
from mlstream.security.secure_datasets import TeamView
from mlstream.settings import Settings

LINEAGE_USER = "mlstream"


def process_name(view: TeamView) -> str:
    return f"secure-datasets:{view.topic}"


def secure_dataset_notification(settings: Settings, registry: SchemaRegistryClient, view: TeamView,
                                started_at_ms: int) -> dict:
    guids = negative_guids()
    topics, schemas = topics_with_schemas(settings, registry, (view.raw_topic, view.topic), guids)
    masked = ", ".join(f"{c} ({m.mask_type})" for c, m in view.masks.items()) or "none"
    process = stream_process(
        process_name(view), inputs=[topics[view.raw_topic]], outputs=[topics[view.topic]],
        namespace=settings.atlas_namespace, model_name=f"secure-dataset:{view.team}", model_version=view.version,
        guid=next(guids), started_at_ms=started_at_ms,
        description=f"The secure dataset of {view.raw_topic} for team {view.team} by {view.version}: columns "
                    f"{', '.join(view.columns)}; masked {masked}; rows kept where {view.row_filter_text or 'TRUE'}.")
    return entity_create_v2([process], [*topics.values(), *schemas], user=LINEAGE_USER)


def emit_secure_dataset_lineage(settings: Settings, registry: SchemaRegistryClient, view: TeamView) -> None:
    emitter = KafkaHookEmitter(hook_producer(settings), settings.topics.atlas_hook, key=process_name(view))
    emitter.emit(secure_dataset_notification(settings, registry, view, started_at_ms=time.time_ns() // 1_000_000))
    emitter.flush()
