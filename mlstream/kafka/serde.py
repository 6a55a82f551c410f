"""Avro serialization through the Schema Registry, and the errors a consumer must tell apart.

Built from confluent-kafka's own parts (registry client, AvroSerializer,
AvroDeserializer), so the wire format is the Confluent framing every
Kafka/Cloudera/Confluent tool reads: magic byte 0, a 4-byte schema id, then the
Avro body. Producers never register schemas themselves: ``mlstream init`` does,
and a serializer that finds no registered schema fails loudly.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.schema_registry import topic_subject_name_strategy
from confluent_kafka.serialization import MessageField, SerializationContext

from mlstream.settings import SCHEMA_DIR

CONFLUENT_MAGIC_BYTE = 0
CONFLUENT_HEADER_SIZE = 5


@cache
def schema_text(name: str) -> str:
    """The Avro schema ``mlstream/schemas/<name>.avsc`` as text, e.g. ``schema_text("record")``."""
    path = SCHEMA_DIR / f"{name}.avsc"
    if not path.exists():
        raise FileNotFoundError(f"no Avro schema {name!r}: expected {path}")
    return path.read_text()


#: Seconds before a registry request gives up (the client's default is to wait forever).
REGISTRY_TIMEOUT_S = 30


def registry_client(url: str) -> SchemaRegistryClient:
    return SchemaRegistryClient({"url": url, "timeout": REGISTRY_TIMEOUT_S})


#: TopicNameStrategy, named explicitly: confluent-kafka 2.16 otherwise asks the registry first
#: for subject "associations", an API only Confluent's newest registries have (portable subset).
SUBJECT_NAME_STRATEGY = {"subject.name.strategy": topic_subject_name_strategy}


def value_subject(topic: str) -> str:
    """TopicNameStrategy: the value schema of ``topic`` lives under ``<topic>-value``."""
    return f"{topic}-value"


def avro_serializer(client: SchemaRegistryClient, schema_name: str) -> AvroSerializer:
    # Look the schema up instead of registering it: registration belongs to `mlstream init`,
    # so a producer with a stale schema fails instead of forking the subject's history.
    return AvroSerializer(
        client,
        schema_text(schema_name),
        conf={"auto.register.schemas": False, "normalize.schemas": False, **SUBJECT_NAME_STRATEGY},
    )


def avro_deserializer(client: SchemaRegistryClient, schema_name: str) -> AvroDeserializer:
    # Decoding into our own reader schema resolves any compatible writer version to the
    # shape the code expects.
    return AvroDeserializer(client, schema_text(schema_name), conf=SUBJECT_NAME_STRATEGY)


class UndecodableValue(Exception):
    """A message value that cannot be decoded; ``kind`` names the reason for dead letters."""

    NOT_CONFLUENT_FRAMED = "NOT_CONFLUENT_FRAMED"
    UNKNOWN_SCHEMA_ID = "UNKNOWN_SCHEMA_ID"
    DECODE_FAILED = "DECODE_FAILED"

    def __init__(self, kind: str, message: str):
        super().__init__(f"{kind}: {message}")
        self.kind = kind
        self.message = message


@dataclass(frozen=True)
class TopicCodec:
    """Encodes and decodes the values of one topic with that topic's schema."""

    client: SchemaRegistryClient
    topic: str
    schema_name: str
    serializer: AvroSerializer
    deserializer: AvroDeserializer

    @classmethod
    def for_topic(cls, client: SchemaRegistryClient, topic: str, schema_name: str) -> "TopicCodec":
        return cls(client, topic, schema_name, avro_serializer(client, schema_name),
                   avro_deserializer(client, schema_name))

    def encode(self, value: dict) -> bytes:
        return self.serializer(value, SerializationContext(self.topic, MessageField.VALUE))

    def warm_up(self) -> None:
        """Encode and decode a placeholder value now, so the registry look-ups and schema
        parsing a codec does on first use do not stall the first real message (tens of ms)."""
        self.decode(self.encode(placeholder(json.loads(schema_text(self.schema_name)))))

    def decode(self, data: bytes | None) -> dict:
        """Decode one value or raise :class:`UndecodableValue` saying why.

        Any other exception (the registry cannot be reached) means the message may
        be fine: the caller retries instead of dead-lettering it.
        """
        if data is None or len(data) < CONFLUENT_HEADER_SIZE or data[0] != CONFLUENT_MAGIC_BYTE:
            shown = "null" if data is None else f"{len(data)} bytes starting {data[:8]!r}"
            raise UndecodableValue(
                UndecodableValue.NOT_CONFLUENT_FRAMED,
                f"value is not Confluent-framed Avro (magic byte 0 + 4-byte schema id): {shown}",
            )
        schema_id = int.from_bytes(data[1:5], "big")
        try:
            self.client.get_schema(schema_id)  # cached after the first call
        except SchemaRegistryError as err:
            if err.http_status_code == 404:
                raise UndecodableValue(
                    UndecodableValue.UNKNOWN_SCHEMA_ID,
                    f"schema id {schema_id} is not in the registry: {err.error_message}",
                ) from err
            raise
        try:
            value = self.deserializer(data, SerializationContext(self.topic, MessageField.VALUE))
        except Exception as err:  # fastavro raises many types for bad bodies; all mean the same here
            raise UndecodableValue(UndecodableValue.DECODE_FAILED, f"{type(err).__name__}: {err}") from err
        if not isinstance(value, dict):
            raise UndecodableValue(UndecodableValue.DECODE_FAILED, f"decoded to {type(value).__name__}, not a record")
        return value


def placeholder(schema):
    """The smallest value an Avro schema accepts: null where allowed, zeros, empty strings and lists.

    >>> placeholder({"type": "record", "name": "r", "fields": [
    ...     {"name": "id", "type": "string"}, {"name": "n", "type": ["null", "long"]},
    ...     {"name": "tags", "type": {"type": "array", "items": "string"}}]})
    {'id': '', 'n': None, 'tags': []}
    """
    if isinstance(schema, list):  # a union: null if it may be, else its first branch
        return None if "null" in schema else placeholder(schema[0])
    kind = schema["type"] if isinstance(schema, dict) else schema
    if isinstance(kind, (dict, list)):
        return placeholder(kind)
    match kind:
        case "record":
            return {f["name"]: placeholder(f["type"]) for f in schema["fields"]}
        case "enum":
            return schema["symbols"][0]
        case "array":
            return []
        case "map":
            return {}
        case "fixed":
            return bytes(schema["size"])
        case "string":
            return ""
        case "bytes":
            return b""
        case "int" | "long":
            return 0
        case "float" | "double":
            return 0.0
        case "boolean":
            return False
        case "null":
            return None
    raise ValueError(f"placeholder: named type {kind!r} is not supported")


def epoch_ms(value) -> int:
    """timestamp-millis fields decode to datetimes; the app keeps epoch milliseconds."""
    if isinstance(value, datetime):
        return int(value.timestamp() * 1000)
    return int(value)
