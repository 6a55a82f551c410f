"""The plain confluent-kafka loop: the reference `mlstream bench` holds the stream app against.

One process, one consumer on the records and labels topics, batches from
``Consumer.consume``, the :mod:`tools.bench.scoring_job` job on each message, predictions
handed to ``Producer.produce`` and an in-memory dict join. Nothing else: no dead letters, no
metrics, no checkpoints, no state that survives a restart. It is the floor the app's own data
plane should come close to, and stays this simple on purpose.

Run as ``python -m tools.bench.plain_loop`` with the ``MLSTREAM_*`` settings of a bench round;
it runs until SIGTERM or SIGINT.
"""

from __future__ import annotations

import signal
import sys
import time

from confluent_kafka import KafkaException, Producer

from mlstream.kafka import clients
from mlstream.settings import Settings
from tools.bench.scoring_job import FramedAvro, InMemoryJoin, ScoringJob, registered_schema_id

#: Up to BATCH messages per ``consume``, which waits up to BATCH_WAIT_S for a batch to fill: on a
#: backlog batches are full at once, on a live feed the wait bounds what batching adds to latency.
BATCH, BATCH_WAIT_S = 500, 0.01


def run(settings: Settings, should_stop) -> None:
    topics = settings.topics
    registry = clients.registry_client(settings)
    job = ScoringJob(FramedAvro(lambda schema_id: registry.get_schema(schema_id).schema_str), settings.model,
                     settings.model_version, registered_schema_id(registry, topics.predictions, "prediction"))
    join = InMemoryJoin(job)
    consumer = clients.consumer(settings, **{"group.id": settings.app_id,
                         "auto.offset.reset": "earliest"})
    producer = clients.producer(settings, **{"linger.ms": 5})
    consumer.subscribe([topics.records, topics.labels])
    try:
        while not should_stop():
            for message in consumer.consume(BATCH, timeout=BATCH_WAIT_S):
                if message.error() is not None:
                    raise KafkaException(message.error())
                if message.topic() == topics.records:
                    prediction = join.on_record(message.value(), message.topic(), message.partition(),
                                                message.offset(), time.perf_counter())
                    produce(producer, topics.predictions, message.key(), prediction)
                else:
                    join.on_label(message.value())
            producer.poll(0)
    finally:
        producer.flush(30)
        consumer.close()


def produce(producer: Producer, topic: str, key: bytes, value: bytes, **options) -> None:
    """``Producer.produce``, waiting for room when the local queue is full."""
    while True:
        try:
            producer.produce(topic, key=key, value=value, **options)
            return
        except BufferError:  # the local queue is full: let deliveries drain, then retry
            producer.poll(0.1)


def main() -> int:
    stopping = []
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.append(True))
    run(Settings.from_env(), lambda: bool(stopping))
    return 0


if __name__ == "__main__":
    sys.exit(main())
