"""A Kafka producer for Confluent-framed Avro values that never loses a message quietly.

Every feed sends through it: values are encoded by a :class:`TopicCodec`, a
full local queue is drained instead of raising, and ``flush`` raises
:class:`DeliveryFailed` if anything was not delivered.
"""

from __future__ import annotations

from confluent_kafka import KafkaError, KafkaException, Producer

from mlstream.errors import AccessDenied, UserError
from mlstream.kafka import clients
from mlstream.kafka.serde import TopicCodec
from mlstream.settings import Settings


class DeliveryFailed(UserError):
    pass


class AvroProducer:
    def __init__(self, settings: Settings, producer: Producer | None = None):
        self.producer = producer or clients.producer(settings, **{"enable.idempotence": True, "linger.ms": 5})
        self.failures: list[str] = []
        self.denied: str | None = None  # a topic the broker refused a write to

    def _on_delivery(self, err, msg) -> None:
        if err is not None:
            self.failures.append(f"{msg.topic()}: {err}")
            if err.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED:
                self.denied = msg.topic()

    def send(self, codec: TopicCodec, key: bytes, value: dict) -> None:
        data = codec.encode(value)
        while True:
            try:
                self.producer.produce(codec.topic, key=key, value=data, on_delivery=self._on_delivery)
                break
            except BufferError:  # the local queue is full: let deliveries drain, then retry
                self.producer.poll(0.1)
            except KafkaException:
                self.producer.poll(0)  # a fatal error (a denied idempotent producer): its reason reaches error_cb
                raise
        self.producer.poll(0)

    def flush(self, timeout_s: float = 60) -> None:
        remaining = self.producer.flush(timeout_s)
        if self.denied:
            raise AccessDenied("WRITE", "topic", self.denied)
        if remaining or self.failures:
            raise DeliveryFailed(f"{remaining} messages undelivered, {len(self.failures)} failed "
                                 f"(first: {self.failures[:1]}); is Kafka up? try 'mlstream status'")
