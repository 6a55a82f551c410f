"""The job every contender of `mlstream bench scorer` does, written plainly for the baselines.

Decode a Confluent-framed Avro record, score it with a river model built from a model spec,
encode a ``prediction`` value and hand it on; when the record's label comes (matched by record
id), learn from it, in prequential order: a record is scored before its label is learned, a
label that comes first waits. The in-process limit and the plain confluent-kafka loop run
exactly this code, the Quix Streams contender its scoring and learning around its own state;
the app does the same job with its own codecs and scorer.

fastavro directly, no confluent-kafka serializer: the writer schema of each schema id is
fetched from the registry once and kept parsed.
"""

from __future__ import annotations

import io
import json
import time
from typing import Callable

import fastavro
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient

import models
from mlstream.kafka.serde import CONFLUENT_HEADER_SIZE, CONFLUENT_MAGIC_BYTE, epoch_ms, schema_text, value_subject
from mlstream.scoring.online_model import OnlineModel
from mlstream.scoring.scorer import now_ms, prediction_value


class FramedAvro:
    """Confluent-framed Avro values (magic byte, 4-byte schema id, body), writer schemas cached by id."""

    def __init__(self, fetch_schema: Callable[[int], str]):
        self.fetch_schema = fetch_schema
        self.schemas: dict[int, dict] = {}

    def schema(self, schema_id: int) -> dict:
        if schema_id not in self.schemas:
            self.schemas[schema_id] = fastavro.parse_schema(json.loads(self.fetch_schema(schema_id)))
        return self.schemas[schema_id]

    def decode(self, data: bytes) -> dict:
        if len(data) < CONFLUENT_HEADER_SIZE or data[0] != CONFLUENT_MAGIC_BYTE:
            raise ValueError(f"not Confluent-framed Avro: {data[:8]!r}")
        schema_id = int.from_bytes(data[1:CONFLUENT_HEADER_SIZE], "big")
        return fastavro.schemaless_reader(io.BytesIO(data[CONFLUENT_HEADER_SIZE:]), self.schema(schema_id))

    def encode(self, schema_id: int, value: dict) -> bytes:
        out = io.BytesIO()
        out.write(bytes([CONFLUENT_MAGIC_BYTE]) + schema_id.to_bytes(4, "big"))
        fastavro.schemaless_writer(out, self.schema(schema_id), value)
        return out.getvalue()


def registered_schema_id(registry: SchemaRegistryClient, topic: str, schema: str) -> int:
    """The id under which ``mlstream init`` registered ``schema`` for ``topic``'s values."""
    return registry.lookup_schema(value_subject(topic), Schema(schema_text(schema), "AVRO")).schema_id


class ScoringJob:
    """Score a record into an encoded prediction; learn from a label. No Kafka, no state of its own."""

    def __init__(self, avro: FramedAvro, model_spec: str, model_version: str, prediction_schema_id: int):
        self.avro = avro
        self.model = OnlineModel(models.build(model_spec), model_spec, model_version)
        self.prediction_schema_id = prediction_schema_id

    def score(self, data: bytes, topic: str, partition: int, offset: int,
              arrived: float) -> tuple[str, dict[str, float], bytes]:
        """(record id, features, the encoded prediction) of one record value."""
        record = self.avro.decode(data)
        prediction = self.model.predict(record["features"])
        value = prediction_value(self.model, prediction, record["id"], topic, partition, offset,
                                 epoch_ms(record["event_time"]), now_ms(), (time.perf_counter() - arrived) * 1000.0)
        return record["id"], record["features"], self.avro.encode(self.prediction_schema_id, value)

    def label(self, data: bytes) -> tuple[str, object]:
        """(record id, label) of one label value."""
        label = self.avro.decode(data)
        return label["id"], label["label"]

    def learn(self, features: dict[str, float], label) -> None:
        self.model.learn(features, label)


class InMemoryJoin:
    """The join of the baselines: two dicts keyed by record id, one of them nearly always empty."""

    def __init__(self, job: ScoringJob):
        self.job = job
        self.awaiting_label: dict[str, dict[str, float]] = {}  # scored, label not here yet
        self.early_labels: dict[str, object] = {}  # label here, record not scored yet

    def on_record(self, data: bytes, topic: str, partition: int, offset: int, arrived: float) -> bytes:
        record_id, features, prediction = self.job.score(data, topic, partition, offset, arrived)
        if record_id in self.early_labels:
            self.job.learn(features, self.early_labels.pop(record_id))
        else:
            self.awaiting_label[record_id] = features
        return prediction

    def on_label(self, data: bytes) -> None:
        record_id, label = self.job.label(data)
        features = self.awaiting_label.pop(record_id, None)
        if features is None:
            self.early_labels[record_id] = label
        else:
            self.job.learn(features, label)
