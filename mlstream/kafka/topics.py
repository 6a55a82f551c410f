"""The project's topics and their schemas, and `mlstream init`, which sets both up.

Running ``init`` twice changes nothing: existing topics are checked, not
recreated, and registering an identical schema returns the existing version.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from mlstream.errors import UserError
from mlstream.kafka.serde import TopicCodec, registry_client, schema_text, value_subject
from mlstream.settings import Settings

THIRTY_DAYS_MS = str(30 * 24 * 3600 * 1000)


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    schema: str | None  # name of the .avsc in mlstream/schemas/, None for JSON topics such as ATLAS_HOOK
    config: dict[str, str] = field(default_factory=dict)


def project_topics(settings: Settings) -> list[TopicSpec]:
    """Every topic the app reads or writes, with explicit partition counts.

    Records, labels and predictions share one partition count and one key (the
    record id), so a record, its label and its prediction meet in the same
    partition: the app's join tables rely on that co-partitioning.
    """
    t, n = settings.topics, settings.partitions
    return [
        TopicSpec(t.records, n, "record"),
        TopicSpec(t.labels, n, "label"),
        TopicSpec(t.predictions, n, "prediction"),
        TopicSpec(t.metrics, 1, "metric"),
        TopicSpec(t.dead_letters, 1, "dead_letter", {"retention.ms": THIRTY_DAYS_MS}),
        TopicSpec(t.alerts, 1, "alert"),
        # Model registry metadata: the latest value per key (a model, build or deployment CRN) is the truth.
        TopicSpec(t.model_registry, 1, None, {"cleanup.policy": "compact"}),
        # Deployment commands to the stream apps and their outcomes, in order: one partition.
        TopicSpec(t.deployments, 1, None),
        # Split Atlas hook messages must stay in order: one partition, as Atlas creates it.
        TopicSpec(t.atlas_hook, 1, None),
        # Record linkage: one partition, so one worker sees every record and the whole blocking
        # index (records of one entity arrive under different keys; see apps/linker/app.py).
        TopicSpec(t.linkage_records, 1, "linkage_record"),
        TopicSpec(t.links, 1, "link_event"),
        TopicSpec(t.entity_updates, 1, "entity_update"),
        TopicSpec(t.confirmed_pairs, 1, "confirmed_pair"),
    ]


def schema_of(settings: Settings, topic: str) -> str:
    """The Avro schema a project topic carries, as :func:`project_topics` declares it.

    >>> from mlstream.settings import Settings
    >>> settings = Settings.from_env()
    >>> schema_of(settings, settings.topics.predictions)
    'prediction'
    """
    for spec in project_topics(settings):
        if spec.name == topic:
            if spec.schema is None:
                raise UserError(f"topic {topic} carries JSON, not Avro: it has no codec")
            return spec.schema
    raise UserError(f"{topic} is not one of the project's topics (prefix {settings.topics.prefix!r})")


def topic_codec(registry: SchemaRegistryClient, settings: Settings, topic: str) -> TopicCodec:
    """The codec of one of the project's topics, with the schema :func:`project_topics` names for it."""
    return TopicCodec.for_topic(registry, topic, schema_of(settings, topic))


class InitError(UserError):
    pass


def create_topics(admin: AdminClient, specs: list[TopicSpec], say: Callable[[str], None]) -> list[str]:
    """Create the missing topics; return the names created. Existing ones must match."""
    existing = admin.list_topics(timeout=15).topics
    for spec in specs:
        if spec.name in existing and len(existing[spec.name].partitions) != spec.partitions:
            raise InitError(
                f"topic {spec.name} exists with {len(existing[spec.name].partitions)} partitions, "
                f"expected {spec.partitions}: delete it or set MLSTREAM_PARTITIONS to match"
            )
    missing = [s for s in specs if s.name not in existing]
    if not missing:
        say(f"topics: all {len(specs)} exist")
        return []
    futures = admin.create_topics(
        [NewTopic(s.name, num_partitions=s.partitions, replication_factor=1, config=s.config) for s in missing]
    )
    created = []
    for name, future in futures.items():
        try:
            future.result(timeout=30)
        except KafkaException as err:
            # Made meanwhile (a topic created just before is not always in the metadata read above,
            # or another init ran at once): it exists, which is what was asked.
            if err.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise
            continue
        created.append(name)
        say(f"topics: created {name}")
    return created


def register_schemas(
    client: SchemaRegistryClient, specs: list[TopicSpec], say: Callable[[str], None], compatibility: str = "BACKWARD"
) -> dict[str, int]:
    """Register each topic's value schema under TopicNameStrategy; return subject -> version."""
    versions = {}
    for spec in specs:
        if spec.schema is None:
            continue
        subject = value_subject(spec.name)
        _ensure_compatibility(client, subject, compatibility, say)
        schema = Schema(schema_text(spec.schema), "AVRO")
        schema_id = client.register_schema(subject, schema)
        registered = client.lookup_schema(subject, schema)
        versions[subject] = registered.version
        say(f"schemas: {subject} -> version {registered.version} (id {schema_id})")
    return versions


def _ensure_compatibility(client: SchemaRegistryClient, subject: str, level: str, say: Callable[[str], None]) -> None:
    try:
        current = client.get_compatibility(subject)
    except SchemaRegistryError as err:
        if err.http_status_code != 404:
            raise
        current = None  # no subject-level setting yet
    if current != level:
        client.set_compatibility(subject, level)
        say(f"schemas: {subject} compatibility {level}")


def init(settings: Settings, say: Callable[[str], None] = print) -> dict:
    """Create topics and register schemas; safe to run any number of times."""
    specs = project_topics(settings)
    admin = AdminClient({"bootstrap.servers": settings.bootstrap_servers})
    created = create_topics(admin, specs, say)
    versions = register_schemas(registry_client(settings.schema_registry_url), specs, say)
    return {"created_topics": created, "schema_versions": versions}
