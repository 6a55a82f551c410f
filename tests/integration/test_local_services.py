"""The local Kafka and Schema Registry serve the clients the apps use.

Against the services of the `services` fixture (tests/conftest.py, which calls
local_services.up() once): confluent-kafka's admin, producer and consumer;
aiokafka; a real Faust worker (topics, table changelog, committed offsets); and
confluent-kafka's Schema Registry client and Avro serdes against Apicurio's
Confluent-compatible API. Names are unique per test, so runs do not collide.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest
import requests
from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import ConfigResource, NewTopic
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext

from mlstream.kafka import clients
from mlstream.settings import Settings
from tests.conftest import free_port
from tools import local_services

pytestmark = pytest.mark.integration


def unique(name: str) -> str:
    return f"test-local-services-{name}-{uuid.uuid4().hex[:8]}"


def create_topics(settings: Settings, *names: str, partitions: int = 1) -> None:
    admin = clients.admin(settings)
    futures = admin.create_topics([NewTopic(name, partitions, 1) for name in names])
    for future in futures.values():
        future.result(timeout=30)


def produce(settings: Settings, topic: str, values: list[bytes]) -> None:
    producer = clients.producer(settings, **{"enable.idempotence": True})
    for value in values:
        producer.produce(topic, value=value)
    assert producer.flush(30) == 0


def read_topic(settings: Settings, topic: str, count: int, timeout_s: float = 30) -> list[bytes]:
    consumer = clients.consumer(settings, **{"group.id": unique("reader"), "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    values: list[bytes] = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(values) < count and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                values.append(message.value())
    finally:
        consumer.close()
    return values


def committed_offsets(settings: Settings, group: str) -> dict[str, int]:
    admin = clients.admin(settings)
    result = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])[group].result(timeout=30)
    return {f"{tp.topic}[{tp.partition}]": tp.offset for tp in result.topic_partitions}


# --- The manager itself -------------------------------------------------------


def test_both_services_run_and_answer(services: Settings) -> None:
    statuses = {s.name: s for s in local_services.status(services)}
    assert set(statuses) == {"kafka", "schema-registry"}
    for service in statuses.values():
        assert service.running and service.healthy and service.pid, service
        assert service.log_path.exists(), service
    assert requests.get(f"{services.schema_registry_url}/subjects", timeout=10).status_code == 200


def test_up_again_is_a_noop(services: Settings) -> None:
    pids = {s.name: s.pid for s in local_services.status(services)}
    messages: list[str] = []
    statuses = local_services.up(services, progress=messages.append)
    assert {s.name: s.pid for s in statuses} == pids
    assert len(messages) == 1 and messages[0].startswith("Already running"), messages


def test_services_outlive_the_process_that_started_them(services: Settings, tmp_path: Path) -> None:
    """A second pair on other ports and state dir, started by a Python process that then exits."""
    kafka_port, controller_port, registry_port = free_port(), free_port(), free_port()
    env = {
        **os.environ,
        "MLSTREAM_STATE_DIR": str(tmp_path / "state"),
        "MLSTREAM_KAFKA_PORT": str(kafka_port),
        "MLSTREAM_KAFKA_CONTROLLER_PORT": str(controller_port),
        "MLSTREAM_REGISTRY_PORT": str(registry_port),
        "MLSTREAM_BOOTSTRAP_SERVERS": f"localhost:{kafka_port}",
        "MLSTREAM_SCHEMA_REGISTRY_URL": f"http://localhost:{registry_port}/apis/ccompat/v7",
    }
    settings = dataclasses.replace(
        services,
        state_dir=tmp_path / "state",
        kafka_port=kafka_port,
        kafka_controller_port=controller_port,
        registry_port=registry_port,
        bootstrap_servers=env["MLSTREAM_BOOTSTRAP_SERVERS"],
        schema_registry_url=env["MLSTREAM_SCHEMA_REGISTRY_URL"],
    )
    start = "from mlstream import settings; from tools import local_services; local_services.up(settings.Settings.from_env())"
    topic, subject = unique("survivor"), unique("survivor") + "-value"
    try:
        subprocess.run([sys.executable, "-c", start], env=env, check=True, timeout=180)
        statuses = local_services.status(settings)
        assert all(s.running and s.healthy for s in statuses), statuses
        create_topics(settings, topic)
        produce(settings, topic, [b"still here"])
        assert read_topic(settings, topic, 1) == [b"still here"]
        registry = SchemaRegistryClient({"url": settings.schema_registry_url})
        schema_id = registry.register_schema(subject, avro(RECORD_V1))

        moved = dataclasses.replace(settings, registry_port=free_port())
        with pytest.raises(local_services.LocalServicesError, match="running on other ports"):
            local_services.up(moved, progress=lambda _: None)

        # Topics and schemas both survive a restart, so stored messages keep their meaning.
        local_services.down(settings, progress=lambda _: None)
        local_services.up(settings, progress=lambda _: None)
        assert read_topic(settings, topic, 1) == [b"still here"]
        fresh_client = SchemaRegistryClient({"url": settings.schema_registry_url})
        assert fresh_client.get_latest_version(subject).schema_id == schema_id
    finally:
        local_services.down(settings, progress=lambda _: None)
    assert not any(s.running for s in local_services.status(settings))
    assert not list((tmp_path / "state" / "run").glob("*.pid"))
    messages: list[str] = []
    local_services.down(settings, progress=messages.append)
    assert messages == ["Kafka and Schema Registry are not running."]


def test_a_port_taken_by_someone_else_is_reported(services: Settings, tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        settings = dataclasses.replace(
            services,
            state_dir=tmp_path / "state",
            kafka_port=port,
            kafka_controller_port=free_port(),
            registry_port=free_port(),
            bootstrap_servers=f"localhost:{port}",
        )
        with pytest.raises(local_services.LocalServicesError, match=f"Port {port} \\(MLSTREAM_KAFKA_PORT\\)"):
            local_services.up(settings, progress=lambda _: None)
    # Nothing was started: the ports are checked before any process starts.
    assert not any(s.running for s in local_services.status(settings))


# --- Kafka clients ------------------------------------------------------------


def test_confluent_kafka_admin_producer_consumer(services: Settings) -> None:
    topic, group = unique("confluent"), unique("group")
    create_topics(services, topic, partitions=3)
    admin = clients.admin(services)
    assert len(admin.list_topics(topic, timeout=10).topics[topic].partitions) == 3

    produce(services, topic, [f"m{i}".encode() for i in range(30)])
    consumer = clients.consumer(services, **{"group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False})
    consumer.subscribe([topic])
    received = []
    deadline = time.monotonic() + 30
    while len(received) < 30 and time.monotonic() < deadline:
        message = consumer.poll(0.5)
        if message is not None and message.error() is None:
            received.append(message.value())
    consumer.commit(asynchronous=False)
    consumer.close()
    assert sorted(received) == sorted(f"m{i}".encode() for i in range(30))
    assert sum(committed_offsets(services, group).values()) == 30

    admin.delete_topics([topic])[topic].result(timeout=30)


def test_aiokafka_producer_and_consumer_group(services: Settings) -> None:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    topic, group = unique("aiokafka"), unique("group")
    create_topics(services, topic)

    async def round_trip() -> list[bytes]:
        producer = AIOKafkaProducer(bootstrap_servers=services.bootstrap_servers, acks="all")
        await producer.start()
        try:
            for i in range(5):
                await producer.send_and_wait(topic, f"a{i}".encode())
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=services.bootstrap_servers,
            group_id=group,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        try:
            values = []
            while len(values) < 5:
                batch = await asyncio.wait_for(consumer.getmany(timeout_ms=500), timeout=30)
                values += [record.value for records in batch.values() for record in records]
            await consumer.commit()
            return values
        finally:
            await consumer.stop()

    assert asyncio.run(round_trip()) == [f"a{i}".encode() for i in range(5)]
    assert committed_offsets(services, group) == {f"{topic}[0]": 5}


# A Faust worker that counts words in a Table and writes "word=count" to a sink
# topic. It touches PROBE_READY once its table is recovered and its stream
# partitions are positioned, and stops itself (gracefully, as on Ctrl-C) once it
# has seen PROBE_EXPECTED words, after writing the table to PROBE_RESULT.
FAUST_PROBE_APP = textwrap.dedent(
    """
    import json, os, signal
    import faust

    app = faust.App(
        os.environ["PROBE_APP_ID"],
        broker="kafka://" + os.environ["PROBE_BOOTSTRAP"],
        store="memory://",
        topic_partitions=1,
        processing_guarantee=os.environ["PROBE_GUARANTEE"],
    )
    words = app.topic(os.environ["PROBE_SOURCE"], value_type=str)
    sink = app.topic(os.environ["PROBE_SINK"], value_type=str)
    counts = app.Table("counts", default=int, partitions=1)
    seen = 0

    @app.agent(words)
    async def count(stream):
        global seen
        async for word in stream:
            counts[word] += 1
            await sink.send(value=f"{word}={counts[word]}")
            seen += 1

    @app.timer(0.2)
    async def report_ready():
        if app.tables.recovery.completed.is_set():
            open(os.environ["PROBE_READY"], "w").close()

    @app.timer(0.5)
    async def stop_when_done():
        if seen >= int(os.environ["PROBE_EXPECTED"]):
            with open(os.environ["PROBE_RESULT"], "w") as result:
                json.dump(dict(counts.items()), result)
            os.kill(os.getpid(), signal.SIGTERM)

    if __name__ == "__main__":
        app.main()
    """
)


@pytest.mark.parametrize("guarantee", ["at_least_once", "exactly_once"])
def test_faust_worker_topics_table_and_offsets(services: Settings, tmp_path: Path, guarantee: str) -> None:
    app_id, source, sink = unique("faust"), unique("words"), unique("sink")
    create_topics(services, source, sink)
    app_file = tmp_path / "probe_app.py"
    app_file.write_text(FAUST_PROBE_APP)
    env = {
        **os.environ,
        "PROBE_APP_ID": app_id,
        "PROBE_BOOTSTRAP": services.bootstrap_servers,
        "PROBE_SOURCE": source,
        "PROBE_SINK": sink,
        "PROBE_GUARANTEE": guarantee,
    }

    def run_worker(words: list[str], run: int) -> dict[str, int]:
        ready, result = tmp_path / f"ready-{run}", tmp_path / f"result-{run}.json"
        log = tmp_path / f"worker-{run}.log"
        run_env = {**env, "PROBE_EXPECTED": str(len(words)), "PROBE_READY": str(ready), "PROBE_RESULT": str(result)}
        with open(log, "w") as out:
            worker = subprocess.Popen(
                # (The worker command turns Faust's web server on unless told otherwise,
                # whatever the App's web_enabled says; it would take MLSTREAM_WEB_PORT.)
                [sys.executable, str(app_file), "worker", "--without-web", "--loglevel", "info"],
                cwd=tmp_path,
                env=run_env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
            try:
                # Words go in once the worker is ready, not while it starts: faust-streaming
                # 0.15.3 resumes stream partitions before seeking them to the committed
                # offsets when it restores a table, so records already waiting then are
                # sometimes processed twice or skipped (infra/README.md).
                deadline = time.monotonic() + 60
                while not ready.exists() and worker.poll() is None and time.monotonic() < deadline:
                    time.sleep(0.1)
                assert ready.exists(), log.read_text()[-3000:]
                produce(services, source, [json.dumps(word).encode() for word in words])
                returncode = worker.wait(timeout=60)
            except subprocess.TimeoutExpired:
                pytest.fail(f"the worker did not finish; its log ends:\n{log.read_text()[-3000:]}")
            finally:
                if worker.poll() is None:
                    worker.kill()
                    worker.wait()
        assert returncode == 0 and result.exists(), log.read_text()[-3000:]
        return json.loads(result.read_text())

    assert run_worker(["a", "b", "a", "c", "a"], run=1) == {"a": 3, "b": 1, "c": 1}
    # A new worker of the same app: the table comes back from its changelog topic, and
    # the committed offsets keep it from counting the first five words again.
    assert run_worker(["a", "d"], run=2) == {"a": 4, "b": 1, "c": 1, "d": 1}

    assert committed_offsets(services, app_id)[f"{source}[0]"] == 7
    sent = read_topic(services, sink, 7)
    assert [json.loads(value) for value in sent] == ["a=1", "b=1", "a=2", "c=1", "a=3", "a=4", "d=1"]
    changelog = f"{app_id}-counts-changelog"
    admin = clients.admin(services)
    resource = ConfigResource(ConfigResource.Type.TOPIC, changelog)
    config = admin.describe_configs([resource])[resource].result(timeout=30)
    assert config["cleanup.policy"].value == "compact"


# --- Schema Registry ----------------------------------------------------------

RECORD_V1 = {
    "type": "record",
    "name": "Reading",
    "namespace": "mlstream.test",
    "fields": [{"name": "x", "type": "double"}],
}
# Adds a field with a default: readers of v2 can read v1 data (BACKWARD compatible).
RECORD_V2 = {**RECORD_V1, "fields": [*RECORD_V1["fields"], {"name": "note", "type": ["null", "string"], "default": None}]}
# Adds a field without a default: not BACKWARD compatible.
RECORD_BAD = {**RECORD_V1, "fields": [*RECORD_V1["fields"], {"name": "required", "type": "string"}]}


def avro(schema: dict) -> Schema:
    return Schema(json.dumps(schema), "AVRO")


@pytest.fixture
def registry(services: Settings) -> SchemaRegistryClient:
    return SchemaRegistryClient({"url": services.schema_registry_url})


def test_schema_registry_client(registry: SchemaRegistryClient) -> None:
    subject = unique("reading") + "-value"
    first_id = registry.register_schema(subject, avro(RECORD_V1))
    assert registry.register_schema(subject, avro(RECORD_V1)) == first_id

    latest = registry.get_latest_version(subject)
    assert (latest.subject, latest.version, latest.schema_id) == (subject, 1, first_id)
    assert json.loads(latest.schema.schema_str) == RECORD_V1
    found = registry.lookup_schema(subject, avro(RECORD_V1))
    assert (found.version, found.schema_id) == (1, first_id)
    assert json.loads(registry.get_schema(first_id).schema_str) == RECORD_V1

    registry.set_compatibility(subject, "BACKWARD")
    assert registry.get_compatibility(subject) == "BACKWARD"
    assert registry.test_compatibility(subject, avro(RECORD_V2)) is True
    assert registry.test_compatibility(subject, avro(RECORD_BAD)) is False
    with pytest.raises(SchemaRegistryError) as refused:
        registry.register_schema(subject, avro(RECORD_BAD))
    assert refused.value.http_status_code == 409

    second_id = registry.register_schema(subject, avro(RECORD_V2))
    assert second_id != first_id
    assert registry.get_versions(subject) == [1, 2]
    # (get_latest_version would answer from the client's cache, which never expires
    # unless `cache.latest.ttl.sec` is set: ask for the version itself.)
    assert registry.get_version(subject, 2).schema_id == second_id

    assert registry.delete_subject(subject) == [1, 2]
    assert subject not in registry.get_subjects()
    assert registry.delete_subject(subject, permanent=True) == [1, 2]


def test_put_config_and_compatibility_over_http(services: Settings) -> None:
    """The raw Confluent REST calls, as curl or other languages' clients make them."""
    url, subject = services.schema_registry_url, unique("http") + "-value"
    headers = {"Content-Type": "application/vnd.schemaregistry.v1+json"}
    created = requests.post(f"{url}/subjects/{subject}/versions", json={"schema": json.dumps(RECORD_V1)}, headers=headers, timeout=10)
    assert created.status_code == 200 and isinstance(created.json()["id"], int)

    put = requests.put(f"{url}/config/{subject}", json={"compatibility": "BACKWARD"}, headers=headers, timeout=10)
    assert put.status_code == 200 and put.json()["compatibility"] == "BACKWARD"
    assert requests.get(f"{url}/config/{subject}", timeout=10).json() == {"compatibilityLevel": "BACKWARD"}

    check = requests.post(
        f"{url}/compatibility/subjects/{subject}/versions/latest",
        json={"schema": json.dumps(RECORD_BAD)},
        headers=headers,
        timeout=10,
    )
    assert check.status_code == 200 and check.json()["is_compatible"] is False


def test_confluent_error_codes(services: Settings) -> None:
    url = services.schema_registry_url
    missing_subject = requests.get(f"{url}/subjects/{unique('none')}/versions/latest", timeout=10)
    assert (missing_subject.status_code, missing_subject.json()["error_code"]) == (404, 40401)
    missing_schema = requests.get(f"{url}/schemas/ids/987654321", timeout=10)
    assert (missing_schema.status_code, missing_schema.json()["error_code"]) == (404, 40403)


def test_schema_ids_identify_content_as_in_confluent(registry: SchemaRegistryClient) -> None:
    """One schema under two subjects has one id (Apicurio content ids, legacy id mode off)."""
    key = {"type": "record", "name": "Key", "namespace": "mlstream.test", "fields": [{"name": unique("f").replace("-", "_"), "type": "string"}]}
    first = registry.register_schema(unique("a") + "-key", avro(key))
    second = registry.register_schema(unique("b") + "-key", avro(key))
    assert first == second


def test_global_compatibility_defaults_to_backward(services: Settings) -> None:
    assert requests.get(f"{services.schema_registry_url}/config", timeout=10).json() == {"compatibilityLevel": "BACKWARD"}


def test_avro_serializer_and_deserializer_through_kafka(services: Settings, registry: SchemaRegistryClient) -> None:
    topic = unique("avro")
    create_topics(services, topic)
    serialize = AvroSerializer(registry, json.dumps(RECORD_V2))
    deserialize = AvroDeserializer(registry)
    context = SerializationContext(topic, MessageField.VALUE)
    readings = [{"x": 1.5, "note": "first"}, {"x": -2.0, "note": None}]

    produce(services, topic, [serialize(reading, context) for reading in readings])
    received = read_topic(services, topic, 2)

    # Confluent wire format: magic byte 0, then the 4-byte id the serializer registered.
    schema_id = registry.get_latest_version(f"{topic}-value").schema_id
    assert all(value[0] == 0 and int.from_bytes(value[1:5], "big") == schema_id for value in received)
    assert [deserialize(value, context) for value in received] == readings
