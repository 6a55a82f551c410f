"""The project topics the Spark jobs read, and batch reads of topics through Spark's Kafka source."""

from __future__ import annotations

from mlstream.errors import UserError
from mlstream.kafka.topics import schema_of
from mlstream.settings import Settings
from spark_jobs.avro import TopicSchemas, check_topics, decode, fetch_schemas, kafka_options, offsets_json

#: The topics (``settings.topics`` names) the jobs read, e.g. ``mlstream spark read --topic``;
#: which schema each carries is ``project_topics``' to say.
KINDS = ("records", "labels", "predictions")


def topic_of(settings: Settings, kind: str) -> str:
    if kind not in KINDS:
        raise UserError(f"no topic kind {kind!r}: choose one of {', '.join(KINDS)}")
    return getattr(settings.topics, kind)


def prepare(settings: Settings, kind: str) -> TopicSchemas:
    """Check the topic and fetch its writer schemas: every error a user can fix, before Spark runs."""
    topic = topic_of(settings, kind)
    check_topics(settings, topic)
    return fetch_schemas(settings, topic, schema_of(settings, topic))


def read_batch(spark, settings: Settings, schemas: TopicSchemas, start: dict[int, int] | None = None,
               end: dict[int, int] | None = None):
    """The topic's messages in [start, end) per partition (default: all of it now), decoded."""
    reader = spark.read.format("kafka").options(**kafka_options(settings, schemas.topic))
    reader = reader.option("startingOffsets", offsets_json(schemas.topic, start) if start else "earliest")
    reader = reader.option("endingOffsets", offsets_json(schemas.topic, end) if end else "latest")
    return decode(reader.load(), schemas)


def label_value(label) -> object:
    """The label union as Spark decodes it (a struct member0..member3) back to the Python value."""
    if label is None:
        return None
    return next((v for v in (label["member0"], label["member1"], label["member2"], label["member3"])
                 if v is not None), None)
