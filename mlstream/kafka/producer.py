"""A Kafka producer for Confluent-framed Avro values that never loses a message quietly.

Every feed sends through it: values are encoded by a :class:`TopicCodec`, a
full local queue is drained instead of raising, and ``flush`` raises
:class:`DeliveryFailed` if anything was not delivered.
"""

from __future__ import annotations

from confluent_kafka import Producer

from mlstream.errors import UserError
from mlstream.kafka.serde import TopicCodec


class DeliveryFailed(UserError):
    pass


class AvroProducer:
    def __init__(self, bootstrap_servers: str, producer: Producer | None = None):
        self.producer = producer or Producer({
            "bootstrap.servers": bootstrap_servers,
            "enable.idempotence": True,
            "linger.ms": 5,
        })
        self.failures: list[str] = []

    def _on_delivery(self, err, msg) -> None:
        if err is not None:
            self.failures.append(f"{msg.topic()}: {err}")

    def send(self, codec: TopicCodec, key: bytes, value: dict) -> None:
        data = codec.encode(value)
        while True:
            try:
                self.producer.produce(codec.topic, key=key, value=data, on_delivery=self._on_delivery)
                break
            except BufferError:  # the local queue is full: let deliveries drain, then retry
                self.producer.poll(0.1)
        self.producer.poll(0)

    def flush(self, timeout_s: float = 60) -> None:
        remaining = self.producer.flush(timeout_s)
        if remaining or self.failures:
            raise DeliveryFailed(f"{remaining} messages undelivered, {len(self.failures)} failed "
                                 f"(first: {self.failures[:1]}); is Kafka up? try 'mlstream status'")
