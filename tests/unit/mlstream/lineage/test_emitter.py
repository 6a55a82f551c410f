"""KafkaHookEmitter against a stand-in producer: keys, order, and delivery failures that raise."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from mlstream.lineage import entities as e
from mlstream.lineage.emitter import KafkaHookEmitter, LineageDeliveryError
from mlstream.lineage.hook import HookMessageAssembler, entity_create_v2


@dataclass
class FakeError:
    text: str

    def str(self) -> str:
        return self.text


@dataclass
class FakeMessage:
    payload: bytes

    def value(self) -> bytes:
        return self.payload


@dataclass
class FakeProducer:
    """Records produce() calls; delivers on flush(), failing the values listed in ``fail``."""

    fail: set[int] = field(default_factory=set)       # indexes of values whose delivery fails
    full_once: bool = False                           # first produce() raises BufferError
    stuck: int = 0                                    # messages flush() reports as still queued
    sent: list[tuple[str, bytes, bytes]] = field(default_factory=list)
    callbacks: list = field(default_factory=list)
    polls: int = 0

    def produce(self, topic: str, value: bytes, key: bytes, on_delivery) -> None:
        if self.full_once:
            self.full_once = False
            raise BufferError("Local: Queue full")
        self.sent.append((topic, key, value))
        self.callbacks.append(on_delivery)

    def poll(self, timeout: float) -> int:
        self.polls += 1
        return 0

    def flush(self, timeout: float) -> int:
        for index, callback in enumerate(self.callbacks):
            error = FakeError("Broker: Message size too large") if index in self.fail else None
            callback(error, FakeMessage(self.sent[index][2]))
        self.callbacks = []
        return self.stuck


def big_notification() -> dict:
    guids = e.negative_guids()
    topics = [e.kafka_topic(f"t{i}", bootstrap_servers="b:9092", guid=next(guids)) for i in range(50)]
    for i, topic in enumerate(topics):
        topic["attributes"]["description"] = f"{i:x}".join(str(n * 7919 % 10007) for n in range(300))
    return entity_create_v2(topics, user="mlstream")


def test_chunks_go_in_order_with_one_key() -> None:
    producer = FakeProducer()
    emitter = KafkaHookEmitter(producer, "ATLAS_HOOK", key="mlstream-scorer", max_message_bytes=20_000)
    note = big_notification()
    emitter.emit(note)
    emitter.emit(note)
    emitter.flush()
    assert {(topic, key) for topic, key, _ in producer.sent} == {("ATLAS_HOOK", b"mlstream-scorer")}
    assert len(producer.sent) > 4
    assembler = HookMessageAssembler()
    done = [m for _, _, value in producer.sent for m in assembler.add(value)]
    assert [m["message"] for m in done] == [note, note]


def test_failed_delivery_raises_on_flush_once() -> None:
    producer = FakeProducer(fail={1})
    emitter = KafkaHookEmitter(producer, "ATLAS_HOOK", key="app")
    emitter.emit(big_notification())
    emitter.emit(big_notification())
    with pytest.raises(LineageDeliveryError, match="Message size too large"):
        emitter.flush()
    emitter.flush()  # the failure was reported; nothing new failed since


def test_messages_still_queued_after_flush_raise() -> None:
    emitter = KafkaHookEmitter(FakeProducer(stuck=2), "ATLAS_HOOK", key="app")
    emitter.emit(big_notification())
    with pytest.raises(LineageDeliveryError, match="2 message"):
        emitter.flush(timeout=0.1)


def test_full_local_queue_is_drained_and_retried() -> None:
    producer = FakeProducer(full_once=True)
    emitter = KafkaHookEmitter(producer, "ATLAS_HOOK", key="app")
    emitter.emit(big_notification())
    emitter.flush()
    assert len(producer.sent) == 1 and producer.polls >= 2
