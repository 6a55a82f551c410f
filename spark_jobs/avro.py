"""Confluent-framed Avro in Spark: writer schemas from the registry, decoding that keeps failures.

A value is magic byte 0, a 4-byte big-endian schema id, then the Avro body. Spark's
``from_avro`` reads a bare body with one writer schema, so :func:`decode` splits the header
off, decodes the body with the writer schema of its id (fetched once per id through
confluent-kafka's ``SchemaRegistryClient``) and resolves it to our reader schema
(``mlstream/schemas/<name>.avsc``, the ``avroSchema`` option), so every writer version yields the same
columns. ``mode=PERMISSIVE`` turns a body that does not decode into a struct of nulls (Spark
4; null in older releases) instead of failing the job; :func:`decode` then names the reason, with the kinds the stream app's dead letters
use, and :func:`quarantined` keeps those rows with their bytes.

Writer schemas are those registered under the topic's subject when the job starts; a value
framed with any other id is quarantined as ``UNKNOWN_SCHEMA_ID`` (restart a streaming job to
pick up a schema version registered after it started).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass

from confluent_kafka import KafkaException
from confluent_kafka.schema_registry.error import SchemaRegistryError

from mlstream.errors import UserError
from mlstream.kafka import clients
from mlstream.kafka.serde import UndecodableValue, schema_text, value_subject
from mlstream.settings import Settings

#: The Kafka source's columns kept beside decoded values and in the quarantine table.
KAFKA_COLUMNS = ("topic", "partition", "offset", "timestamp")


@dataclass(frozen=True)
class TopicSchemas:
    topic: str
    reader_schema: str  # JSON text of mlstream/schemas/<name>.avsc
    writer_schemas: dict[int, str]  # schema id -> JSON text, every version under <topic>-value


def fetch_schemas(settings: Settings, topic: str, schema_name: str) -> TopicSchemas:
    """The writer schema of every version registered for ``topic``; a clear error if there are none.

    Raises :class:`UserError` when the registry cannot be reached or the subject is missing,
    before any Spark work starts.
    """
    client = clients.registry_client(settings)
    subject = value_subject(topic)
    try:
        versions = client.get_versions(subject)
        ids = sorted({client.get_version(subject, v).schema_id for v in versions})
        writers = {schema_id: client.get_schema(schema_id).schema_str for schema_id in ids}
    except SchemaRegistryError as err:
        if err.http_status_code == 404:
            raise UserError(f"no schema registered under {subject} in {settings.schema_registry_url}: "
                            f"run 'mlstream init' (or register the topic's schema) first") from err
        raise UserError(f"schema registry {settings.schema_registry_url} answered {err}") from err
    except Exception as err:  # connection refused, DNS, timeouts: requests' many error types
        raise UserError(f"schema registry {settings.schema_registry_url} cannot be reached ({type(err).__name__}: "
                        f"{err}); start it with 'mlstream up' or set MLSTREAM_SCHEMA_REGISTRY_URL") from err
    return TopicSchemas(topic, schema_text(schema_name), writers)


def check_topics(settings: Settings, *topics: str) -> None:
    """A clear error, before Spark starts, when the broker is down or a topic does not exist."""
    admin = clients.admin(settings)
    try:
        existing = set(admin.list_topics(timeout=10).topics)
    except KafkaException as err:
        raise UserError(f"Kafka at {settings.bootstrap_servers} cannot be reached ({err}); start it with "
                        f"'mlstream up' or set MLSTREAM_BOOTSTRAP_SERVERS") from err
    missing = [t for t in topics if t not in existing]
    if missing:
        raise UserError(f"topic(s) {', '.join(missing)} do not exist on {settings.bootstrap_servers}: "
                        f"run 'mlstream init' and produce some records first ('mlstream produce')")


def kafka_options(settings: Settings, topic: str) -> dict[str, str]:
    """Options of Spark's Kafka source for ``topic``; add offsets per read.

    Only what committed: the scorer writes its predictions, dead letters and alerts in Kafka
    transactions, and an aborted batch's messages were never there.
    """
    return {**clients.spark_kafka_options(settings), "subscribe": topic, "failOnDataLoss": "false",
            "kafka.isolation.level": "read_committed"}


def offsets_json(topic: str, offsets: dict[int, int]) -> str:
    """``{"topic": {"0": 12, "1": 40}}``, the Kafka source's startingOffsets / endingOffsets."""
    return json.dumps({topic: {str(p): int(o) for p, o in sorted(offsets.items())}})


def decode(frame, schemas: TopicSchemas):
    """Add ``decoded`` (a struct in the reader schema's shape, null on failure), ``schema_id``,
    ``quarantine_kind`` and ``quarantine_reason`` (both null for a good value) to a Kafka source frame."""
    from pyspark.sql import functions as F
    from pyspark.sql.avro.functions import from_avro

    value = F.col("value")
    framed = value.isNotNull() & (F.length(value) >= 5) & (F.substring(value, 1, 1) == F.lit(b"\x00"))
    schema_id = F.when(framed, F.conv(F.hex(F.substring(value, 2, 4)), 16, 10).cast("long"))
    body = F.expr("substring(value, 6)")
    options = {"mode": "PERMISSIVE", "avroSchema": schemas.reader_schema}
    decoded = None
    for writer_id, writer in schemas.writer_schemas.items():
        decoded = (F.when(F.col("schema_id") == writer_id, from_avro(body, writer, options)) if decoded is None
                   else decoded.when(F.col("schema_id") == writer_id, from_avro(body, writer, options)))
    known = F.col("schema_id").isin(list(schemas.writer_schemas))
    fields = [f["name"] for f in json.loads(schemas.reader_schema)["fields"]]
    # Every field null: our reader schemas have required fields, so nothing decoded.
    failed = F.col("decoded").isNull() | ~functools.reduce(
        lambda a, b: a | b, [F.col("decoded").getField(name).isNotNull() for name in fields])
    kind = (F.when(~framed, F.lit(UndecodableValue.NOT_CONFLUENT_FRAMED))
            .when(~known, F.lit(UndecodableValue.UNKNOWN_SCHEMA_ID))
            .when(failed, F.lit(UndecodableValue.DECODE_FAILED)))
    reason = (F.when(~framed, F.lit("value is not Confluent-framed Avro (magic byte 0 + 4-byte schema id)"))
              .when(~known, F.concat(F.lit("schema id "), F.col("schema_id").cast("string"),
                                     F.lit(f" is not registered under {value_subject(schemas.topic)}")))
              .when(failed, F.lit("the Avro body does not decode with its writer schema")))
    return (frame.withColumn("schema_id", schema_id)
            .withColumn("decoded", decoded)
            .withColumn("quarantine_kind", kind)
            .withColumn("quarantine_reason", reason))


def decoded_rows(frame):
    """The good values, flattened: the reader schema's fields plus the Kafka coordinates."""
    from pyspark.sql import functions as F

    return frame.where(F.col("quarantine_kind").isNull()).select(
        "decoded.*", *[F.col(c).alias(f"kafka_{c}") for c in KAFKA_COLUMNS], "schema_id")


QUARANTINE_COLUMNS = ("topic", "partition", "offset", "timestamp", "key", "value", "schema_id",
                      "quarantine_kind", "quarantine_reason")
QUARANTINE_DDL = ("topic STRING, partition INT, offset BIGINT, timestamp TIMESTAMP, key BINARY, value BINARY, "
                  "schema_id BIGINT, quarantine_kind STRING, quarantine_reason STRING")


#: Comments of the columns that are not the reader schema's fields: the metastore's column comments.
COLUMN_COMMENTS = {
    "kafka_topic": "the Kafka topic the value was read from", "topic": "the Kafka topic the value was read from",
    "kafka_partition": "its partition", "partition": "its partition",
    "kafka_offset": "its offset in the partition", "offset": "its offset in the partition",
    "kafka_timestamp": "the Kafka message's timestamp", "timestamp": "the Kafka message's timestamp",
    "kafka_date": "the UTC date of kafka_timestamp (the partition column)",
    "key": "the message key's bytes", "value": "the message value's bytes (kept for a quarantined value only)",
    "raw_value": "the value's bytes of a quarantined value", "schema_id": "the value's writer schema id",
    "quarantine_kind": "why the value did not decode (the dead-letter kinds), null for a good value",
    "quarantine_reason": "the reason in words, null for a good value",
}


def column_comments(reader_schema: str = "") -> dict[str, str]:
    """Column -> comment: the reader schema's field docs, then the Kafka and quarantine columns'.

    >>> schema = '{"type": "record", "name": "R", "fields": [{"name": "id", "type": "string", "doc": "record id"}]}'
    >>> column_comments(schema)["id"], column_comments(schema)["kafka_offset"]
    ('record id', 'its offset in the partition')
    """
    docs = {f["name"]: f["doc"] for f in json.loads(reader_schema)["fields"] if f.get("doc")} if reader_schema else {}
    return docs | COLUMN_COMMENTS


def commented(frame, reader_schema: str = ""):
    """The frame with each known column's comment in its metadata (the metastore keeps it as the column comment)."""
    from pyspark.sql import functions as F

    comments = column_comments(reader_schema)
    return frame.select(*[F.col(f"`{c}`").alias(c, metadata={"comment": comments[c]}) if c in comments
                          else F.col(f"`{c}`") for c in frame.columns])


def quarantined(frame):
    """The values that did not decode, with their bytes and the reason: the quarantine table's rows."""
    from pyspark.sql import functions as F

    return frame.where(F.col("quarantine_kind").isNotNull()).select(*QUARANTINE_COLUMNS)
