"""Quix Streams doing the scorer's job, for `mlstream bench scorer`: the framework peer of the app.

The records and labels topics are concatenated into one StreamingDataFrame, so both reach
one stateful function whose state (RocksDB, with Quix's changelog topics, its defaults) is
keyed by the record id: a record is scored and waits there for its label, or finds its label
waiting. Scoring, encoding and learning are :mod:`tools.bench.scoring_job`'s, as in the plain
loop; Quix does the consuming, the state, the producing and the commits.

Quix Streams pins confluent-kafka below the version the project uses, so it cannot share
the project's environment: this module runs in its own (``make .venv-quix/.installed``) with the
repository on ``PYTHONPATH``, as ``python -m tools.bench.quix_contender`` with the
``MLSTREAM_*`` settings of a bench round. Quix stops it on SIGTERM.
"""

from __future__ import annotations

import sys
import time

from quixstreams import Application, State, message_context
from quixstreams.kafka.configuration import ConnectionConfig

from mlstream.kafka.clients import kafka_config, registry_client
from mlstream.settings import Settings
from tools.bench.scoring_job import FramedAvro, ScoringJob, registered_schema_id


def build(settings: Settings) -> Application:
    topics = settings.topics
    registry = registry_client(settings)
    job = ScoringJob(FramedAvro(lambda schema_id: registry.get_schema(schema_id).schema_str), settings.model,
                     settings.model_version, registered_schema_id(registry, topics.predictions, "prediction"))
    app = Application(broker_address=ConnectionConfig.from_librdkafka_dict(kafka_config(settings)),
                      consumer_group=settings.app_id,
                      auto_offset_reset="earliest", state_dir=str(settings.state_dir / "quix"), loglevel="WARNING")
    records = app.topic(topics.records, key_deserializer="bytes", value_deserializer="bytes")
    labels = app.topic(topics.labels, key_deserializer="bytes", value_deserializer="bytes")
    predictions = app.topic(topics.predictions, key_serializer="bytes", value_serializer="bytes")

    def on_message(value: bytes, state: State) -> bytes | None:
        context = message_context()
        if context.topic == topics.records:
            _, features, prediction = job.score(value, context.topic, context.partition, context.offset,
                                                time.perf_counter())
            label = state.get("label")
            if label is None:
                state.set("features", features)
            else:
                state.delete("label")
                job.learn(features, label["value"])
            return prediction
        _, label = job.label(value)
        features = state.get("features")
        if features is None:
            state.set("label", {"value": label})  # wrapped: a label may be falsy
        else:
            state.delete("features")
            job.learn(features, label)
        return None

    sdf = app.dataframe(records).concat(app.dataframe(labels))
    sdf.apply(on_message, stateful=True).filter(lambda prediction: prediction is not None).to_topic(predictions)
    return app


def main() -> int:
    build(Settings.from_env()).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
