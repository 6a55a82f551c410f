"""The project's topics and their schemas, and `mlstream init`, which sets both up.

Running ``init`` twice changes nothing: existing topics are checked, not
recreated, and registering an identical schema returns the existing version.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from mlstream.errors import AccessDenied, UserError
from mlstream.kafka import clients, problems
from mlstream.kafka.clients import registry_client
from mlstream.kafka.serde import TopicCodec, schema_text, value_subject
from mlstream.settings import Settings

THIRTY_DAYS_MS = str(30 * 24 * 3600 * 1000)


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    schema: str | None  # name of the .avsc in mlstream/schemas/, None for JSON topics such as ATLAS_HOOK
    config: dict[str, str] = field(default_factory=dict)
    replication_factor: int = 1


def project_topics(settings: Settings) -> list[TopicSpec]:
    """Every topic the app reads or writes, with explicit partition counts.

    Records, labels and predictions share one partition count and one key (the
    record id), so a record, its label and its prediction meet in the same
    partition: the app's join tables rely on that co-partitioning.
    """
    t, n = settings.topics, settings.partitions
    return [durable(spec, settings) for spec in [
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
    ]]


def durable(spec: TopicSpec, settings: Settings) -> TopicSpec:
    """``spec`` with the profile's replication factor and ``min.insync.replicas``: every topic mlstream
    creates, the apps' state topics too.

    >>> import dataclasses
    >>> from mlstream.settings import Settings
    >>> settings = dataclasses.replace(Settings.from_env(), replication_factor=3, min_insync_replicas=2)
    >>> spec = durable(TopicSpec("s", 6, None, {"cleanup.policy": "compact"}), settings)
    >>> spec.replication_factor, spec.config
    (3, {'cleanup.policy': 'compact', 'min.insync.replicas': '2'})
    """
    durability = {"min.insync.replicas": str(settings.min_insync_replicas)} if settings.min_insync_replicas else {}
    return replace(spec, replication_factor=settings.replication_factor, config=spec.config | durability)


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


def input_codec(registry: SchemaRegistryClient, settings: Settings, topic: str) -> TopicCodec:
    """The codec of a topic a feature view reads: a project topic's, else one that only decodes
    (the topic's schemas are its producer's; each value is read with its writer schema)."""
    if any(spec.name == topic and spec.schema for spec in project_topics(settings)):
        return topic_codec(registry, settings, topic)
    return TopicCodec.decoder(registry, topic)


class InitError(UserError):
    pass


def check_input_topics(settings: Settings, topics: tuple[str, ...], admin: AdminClient | None = None) -> None:
    """Topics a feature view reads that are not the project's (``mlstream init`` makes those) must exist,
    with the app's partition count: the app's tables join records and labels partition by partition,
    and a topic the broker auto-created on subscription would silently break that."""
    own = {spec.name for spec in project_topics(settings)}
    others = [t for t in topics if t not in own]
    if not others:
        return
    admin = admin or clients.admin(settings)
    existing = admin.list_topics(timeout=15).topics
    for topic in others:
        if topic not in existing:
            raise InitError(f"topic {topic} does not exist: produce to it first (e.g. 'mlstream produce --csv'), "
                            f"or fix the feature view's topic")
        if len(existing[topic].partitions) != settings.partitions:
            raise InitError(f"topic {topic} has {len(existing[topic].partitions)} partitions, the app's tables "
                            f"{settings.partitions} (MLSTREAM_PARTITIONS): records and labels must share one "
                            f"partition count and key")


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
        [NewTopic(s.name, num_partitions=s.partitions, replication_factor=s.replication_factor,
                  config=s.config) for s in missing]
    )
    created = []
    for name, future in futures.items():
        try:
            future.result(timeout=30)
        except KafkaException as err:
            # Made meanwhile (a topic created just before is not always in the metadata read above,
            # or another init ran at once): it exists, which is what was asked.
            if err.args[0].code() in (KafkaError.TOPIC_AUTHORIZATION_FAILED, KafkaError.CLUSTER_AUTHORIZATION_FAILED):
                raise AccessDenied("CREATE", "topic", name) from None
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
        versions[subject] = register_value_schema(client, spec.name, schema_text(spec.schema), say, compatibility)
    return versions


def register_value_schema(client: SchemaRegistryClient, topic: str, schema_str: str, say: Callable[[str], None],
                          compatibility: str = "BACKWARD") -> int:
    """Register ``schema_str`` as the value schema of ``topic`` (TopicNameStrategy); return its version.

    The subject gets ``compatibility`` first, so the registry refuses a schema its readers could not read.
    """
    subject = value_subject(topic)
    _ensure_compatibility(client, subject, compatibility, say)
    schema = Schema(schema_str, "AVRO")
    schema_id = client.register_schema(subject, schema)
    registered = client.lookup_schema(subject, schema)
    say(f"schemas: {subject} -> version {registered.version} (id {schema_id})")
    return registered.version


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
    problems.check_kafka(settings)
    admin = clients.admin(settings)
    created = create_topics(admin, specs, say)
    versions = register_schemas(registry_client(settings), specs, say)
    return {"created_topics": created, "schema_versions": versions}
