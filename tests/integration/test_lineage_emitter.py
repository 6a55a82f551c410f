"""KafkaHookEmitter on the real broker: a split message and a small one come back whole and in order."""

from __future__ import annotations

import random
import string
import time
import uuid

import pytest
from confluent_kafka import Consumer
from confluent_kafka.admin import NewTopic

from mlstream.kafka import clients
from mlstream.lineage import entities as e
from mlstream.lineage.emitter import KafkaHookEmitter, hook_producer
from mlstream.lineage.hook import HookMessageAssembler, entity_create_v2, entity_partial_update_v2
from mlstream.lineage.typesystem import TypeSystem
from mlstream.settings import Settings

pytestmark = pytest.mark.integration


@pytest.fixture
def settings(isolated: Settings) -> Settings:
    """The session's broker (tests/conftest.py starts it once) with this test's own topic names."""
    return isolated


@pytest.fixture
def hook_topic(settings: Settings):
    """A hook topic of this test alone, with one partition as Atlas creates ATLAS_HOOK; deleted afterwards."""
    admin = clients.admin(settings)
    topic = settings.topics.atlas_hook
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])[topic].result(30)
    yield topic
    admin.delete_topics([topic])[topic].result(30)


def startup_lineage(settings: Settings, description_chars: int) -> dict:
    """Start-up lineage whose topics carry long random descriptions, so that it must be split."""
    rng = random.Random(7)
    guids = e.negative_guids()
    topics = {}
    for name in ("records", "labels", "predictions", "metrics"):
        topic = e.kafka_topic(getattr(settings.topics, name), settings.atlas_namespace,
                              bootstrap_servers=settings.bootstrap_servers, guid=next(guids))
        topic["attributes"]["description"] = "".join(rng.choices(string.ascii_letters, k=description_chars))
        topics[name] = topic
    process = e.stream_process(settings.app_id, [topics["records"], topics["labels"]],
                               [topics["predictions"], topics["metrics"]], settings.atlas_namespace,
                               model_name=settings.model, model_version=settings.model_version,
                               started_at_ms=int(time.time() * 1000), guid=next(guids))
    return entity_create_v2([*topics.values(), process], user=settings.app_id)


def test_big_lineage_message_round_trips_through_kafka(settings: Settings, hook_topic: str) -> None:
    create = startup_lineage(settings, description_chars=700_000)  # ~2.8 MB of random letters
    update = entity_partial_update_v2(
        e.object_id("mlstream_stream_process", e.stream_process_qualified_name(settings.app_id, settings.atlas_namespace)),
        {"typeName": "mlstream_stream_process", "attributes": {"modelVersion": "2"}}, user=settings.app_id)
    types = TypeSystem.load()
    assert types.validate_notification(create) == [] and types.validate_notification(update) == []

    emitter = KafkaHookEmitter(hook_producer(settings), hook_topic, key=settings.app_id)
    emitter.emit(create)
    emitter.emit(update)
    emitter.flush(timeout=60)

    consumer = Consumer({"bootstrap.servers": settings.bootstrap_servers, "group.id": f"test-{uuid.uuid4()}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([hook_topic])
    assembler, received, values = HookMessageAssembler(), [], []
    deadline = time.monotonic() + 60
    try:
        while len(received) < 2 and time.monotonic() < deadline:
            message = consumer.poll(1.0)
            if message is None:
                continue
            assert message.error() is None, message.error()
            values.append(message)
            received += assembler.add(message.value())
    finally:
        consumer.close()

    assert [envelope["message"] for envelope in received] == [create, update]
    assert len(values) >= 4  # three or more chunks for the create, one value for the update
    assert {m.key() for m in values} == {settings.app_id.encode()}
    assert max(len(m.value()) for m in values) <= 1_000_000
    assert assembler.pending_message_ids == []
