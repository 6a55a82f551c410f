"""The audit topic ``<prefix>audit``: Ranger-format audit records (schema ``ranger_audit.avsc``), written and read."""

from __future__ import annotations

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import NewTopic

from mlstream.kafka import clients
from mlstream.kafka.reader import read_all
from mlstream.kafka.serde import TopicCodec, schema_text
from mlstream.kafka.topics import register_value_schema
from mlstream.settings import Settings

SCHEMA_NAME = "ranger_audit"


def audit_topic(settings: Settings) -> str:
    return f"{settings.topics.prefix}audit"


def ensure_audit_topic(settings: Settings) -> str:
    """Create the audit topic (one partition: records in the order they were written) and register its schema."""
    topic = audit_topic(settings)
    admin = clients.admin(settings)
    if topic not in admin.list_topics(timeout=15).topics:
        for future in admin.create_topics([NewTopic(topic, 1, settings.replication_factor)]).values():
            try:
                future.result(timeout=30)
            except KafkaException as err:
                if err.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise
    register_value_schema(clients.registry_client(settings), topic, schema_text(SCHEMA_NAME), lambda _: None)
    return topic


class AuditWriter:
    def __init__(self, settings: Settings):
        self.topic = ensure_audit_topic(settings)
        self.codec = TopicCodec.for_topic(clients.registry_client(settings), self.topic, SCHEMA_NAME)
        self.producer = clients.producer(settings)

    def write(self, records: list[dict]) -> int:
        for record in records:
            self.producer.produce(self.topic, key=record["reqUser"].encode(), value=self.codec.encode(record))
        return len(records)

    def flush(self, timeout_s: float = 30) -> None:
        if self.producer.flush(timeout_s) != 0:
            raise RuntimeError(f"audit records not acknowledged by {self.topic} in {timeout_s:g} s")


def read_audit(settings: Settings) -> list[dict]:
    """Every audit record on the topic, oldest first."""
    topic = audit_topic(settings)
    codec = TopicCodec.decoder(clients.registry_client(settings), topic)
    return [codec.decode(message.value()) for message in read_all(settings, topic)]
