"""Avro serialization through the Schema Registry, and the errors a consumer must tell apart.

Encoding uses confluent-kafka's own parts (registry client, AvroSerializer), so the
wire format is the Confluent framing every Kafka/Cloudera/Confluent tool reads: magic
byte 0, a 4-byte schema id, then the Avro body. Producers never register schemas
themselves: ``mlstream init`` (or ``mlstream produce --csv``) does, and a serializer
that finds no registered schema fails loudly.

Decoding reads each value with its *writer* schema, the one whose registry id the framing
carries (fetched once per id, parsed once, kept): any change the registry accepts under
a subject's compatibility keeps decoding, and the consumer gets a plain dict of what the
producer wrote. Mapping that dict onto what the code needs is the reader's business (a
feature view, :mod:`mlstream.features.view`), not the decoder's: decoding with a fixed
reader schema instead made a BACKWARD-compatible v3 that drops a field fail with
``No default value for field ...`` (issue 14, item 8).
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Any

import fastavro
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.schema_registry import topic_subject_name_strategy
from confluent_kafka.serialization import MessageField, SerializationContext
# The HTTP library confluent-kafka's registry client uses: its transport errors are what an unreachable
# registry raises. Since 2.13 that is httpx2 where installed, else httpx, as here; older releases (the Quix
# Streams contender's environment pins one) use httpx.
try:
    import httpx2 as httpx
except ImportError:
    import httpx

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


def registry_unavailable(err: BaseException) -> bool:
    """Whether ``err`` (or an error it was raised from) says the registry could not answer now.

    A refused or timed-out connection or a server error may pass: callers wait and retry. Any
    other error is about the value or the schema, and retrying would not help.

        >>> registry_unavailable(httpx.ConnectError("[Errno 111] Connection refused"))
        True
        >>> registry_unavailable(SchemaRegistryError(503, 50003, "unavailable"))
        True
        >>> registry_unavailable(SchemaRegistryError(404, 40401, "Subject not found"))
        False
        >>> registry_unavailable(ValueError("not a valid long"))
        False
    """
    while err is not None:
        if isinstance(err, httpx.TransportError):
            return True
        if isinstance(err, SchemaRegistryError) and not 400 <= err.http_status_code < 500:
            return True
        err = err.__cause__ or err.__context__
    return False


#: TopicNameStrategy, named explicitly: confluent-kafka 2.16 otherwise asks the registry first
#: for subject "associations", an API only Confluent's newest registries have (portable subset).
SUBJECT_NAME_STRATEGY = {"subject.name.strategy": topic_subject_name_strategy}


def value_subject(topic: str) -> str:
    """TopicNameStrategy: the value schema of ``topic`` lives under ``<topic>-value``."""
    return f"{topic}-value"


def avro_serializer(client: SchemaRegistryClient, schema_str: str) -> AvroSerializer:
    # Look the schema up instead of registering it: registration belongs to `mlstream init`,
    # so a producer with a stale schema fails instead of forking the subject's history.
    return AvroSerializer(
        client,
        schema_str,
        conf={"auto.register.schemas": False, "normalize.schemas": False, **SUBJECT_NAME_STRATEGY},
    )


class UndecodableValue(Exception):
    """A message value that cannot be decoded; ``kind`` names the reason for dead letters."""

    NOT_CONFLUENT_FRAMED = "NOT_CONFLUENT_FRAMED"
    UNKNOWN_SCHEMA_ID = "UNKNOWN_SCHEMA_ID"
    DECODE_FAILED = "DECODE_FAILED"

    def __init__(self, kind: str, message: str):
        super().__init__(f"{kind}: {message}")
        self.kind = kind
        self.message = message


def schema_id_of(data: bytes | None) -> int:
    """The registry id a Confluent-framed value names, or :class:`UndecodableValue` if it is not framed.

    >>> schema_id_of(b"\\x00\\x00\\x00\\x00\\x07" + b"body")
    7
    """
    if data is None or len(data) < CONFLUENT_HEADER_SIZE or data[0] != CONFLUENT_MAGIC_BYTE:
        shown = "null" if data is None else f"{len(data)} bytes starting {data[:8]!r}"
        raise UndecodableValue(
            UndecodableValue.NOT_CONFLUENT_FRAMED,
            f"value is not Confluent-framed Avro (magic byte 0 + 4-byte schema id): {shown}",
        )
    return int.from_bytes(data[1:CONFLUENT_HEADER_SIZE], "big")


def read_body(body: bytes, writer_schema) -> Any:
    """One Avro body read with the schema that wrote it; the whole body, or DECODE_FAILED.

    >>> writer = fastavro.parse_schema({"type": "record", "name": "r", "fields": [{"name": "x", "type": "long"}]})
    >>> read_body(b"\\x06", writer)
    {'x': 3}
    >>> read_body(b"\\x06\\x00", writer)
    Traceback (most recent call last):
    ...
    mlstream.kafka.serde.UndecodableValue: DECODE_FAILED: 1 byte(s) left over after the record: not written with this schema
    """
    buffer = io.BytesIO(body)
    try:
        value = fastavro.schemaless_reader(buffer, writer_schema, None)
    except Exception as err:  # fastavro raises many types for bad bodies; all mean the same here
        raise UndecodableValue(UndecodableValue.DECODE_FAILED, f"{type(err).__name__}: {err}") from err
    if (left := len(body) - buffer.tell()) > 0:
        raise UndecodableValue(UndecodableValue.DECODE_FAILED,
                               f"{left} byte(s) left over after the record: not written with this schema")
    return value


@dataclass(frozen=True)
class TopicCodec:
    """Encodes the values of one topic with that topic's schema; decodes each with its writer schema.

    A codec without a schema (:meth:`decoder`) decodes only: a topic whose schema is someone
    else's, such as a user's input topic read through a feature view.
    """

    client: SchemaRegistryClient
    topic: str
    schema_str: str | None
    serializer: AvroSerializer | None
    #: writer schema id -> parsed schema; ids never change meaning, so nothing ever expires
    writer_schemas: dict[int, Any] = field(default_factory=dict, compare=False, repr=False)
    _writer: tuple[bytes, Any] | None = field(default=None, init=False, compare=False, repr=False)

    @classmethod
    def for_topic(cls, client: SchemaRegistryClient, topic: str, schema_name: str) -> "TopicCodec":
        """The codec of a topic carrying one of the project's schemas (``mlstream/schemas/<name>.avsc``)."""
        return cls.for_schema(client, topic, schema_text(schema_name))

    @classmethod
    def for_schema(cls, client: SchemaRegistryClient, topic: str, schema_str: str) -> "TopicCodec":
        return cls(client, topic, schema_str, avro_serializer(client, schema_str))

    @classmethod
    def decoder(cls, client: SchemaRegistryClient, topic: str) -> "TopicCodec":
        return cls(client, topic, None, None)

    def encode(self, value: dict) -> bytes:
        """The Confluent framing of ``value`` under the schema ``mlstream init`` registered for the topic.

        The registered id is looked up once (through the serializer, which raises if the schema
        is not registered); then fastavro writes each value directly: the serializer's own path
        costs about four times as much per message, which a data plane of 20,000 records/s feels.
        """
        if self.serializer is None:
            raise TypeError(f"the codec of {self.topic} only decodes: it was made without a schema")
        if self._writer is None:
            framed = self.serializer(value, SerializationContext(self.topic, MessageField.VALUE))
            object.__setattr__(self, "_writer", (framed[:CONFLUENT_HEADER_SIZE],
                                                 fastavro.parse_schema(json.loads(self.schema_str))))
            return framed
        header, schema = self._writer
        out = io.BytesIO()
        out.write(header)
        fastavro.schemaless_writer(out, schema, value)
        return out.getvalue()

    def warm_up(self) -> None:
        """Do now the registry look-ups and schema parsing a codec does on first use, so they do
        not stall the first real message (tens of ms): encode and decode a placeholder value, or
        (a decoder) fetch the subject's latest writer schema."""
        if self.schema_str is None:
            self.writer_schema(self.client.get_latest_version(value_subject(self.topic)).schema_id)
            return
        self.decode(self.encode(placeholder(json.loads(self.schema_str))))

    def writer_schema(self, schema_id: int):
        """The parsed schema registered under ``schema_id``, fetched and parsed once."""
        parsed = self.writer_schemas.get(schema_id)
        if parsed is not None:
            return parsed
        try:
            registered = self.client.get_schema(schema_id)
        except SchemaRegistryError as err:
            if err.http_status_code == 404:
                raise UndecodableValue(
                    UndecodableValue.UNKNOWN_SCHEMA_ID,
                    f"schema id {schema_id} is not in the registry: {err.error_message}",
                ) from err
            raise
        if (registered.schema_type or "AVRO") != "AVRO":
            raise UndecodableValue(UndecodableValue.DECODE_FAILED,
                                   f"schema id {schema_id} is a {registered.schema_type} schema, not Avro")
        try:
            parsed = fastavro.parse_schema(json.loads(registered.schema_str))
        except Exception as err:
            raise UndecodableValue(UndecodableValue.DECODE_FAILED,
                                   f"schema id {schema_id} cannot be parsed ({type(err).__name__}: {err})") from err
        self.writer_schemas[schema_id] = parsed
        return parsed

    def decode(self, data: bytes | None) -> dict:
        """Decode one value with its writer schema, or raise :class:`UndecodableValue` saying why.

        Any other exception (the registry cannot be reached) means the message may
        be fine: the caller retries instead of dead-lettering it.
        """
        schema_id = schema_id_of(data)
        value = read_body(data[CONFLUENT_HEADER_SIZE:], self.writer_schema(schema_id))
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
