"""The embedded lineage service: ATLAS_HOOK in (split, gzipped), the official apache-atlas client out."""

from __future__ import annotations

import dataclasses
import json

import pytest
from apache_atlas.client.base_client import AtlasClient
from apache_atlas.exceptions import AtlasServiceException
from confluent_kafka.admin import NewTopic

from apps.lineage_service.service import LineageService
from mlstream.kafka import clients
from mlstream.lineage import entities as e
from mlstream.lineage.emitter import AtlasRestEmitter, KafkaHookEmitter, hook_producer
from mlstream.lineage.hook import entity_create_v2, entity_delete_v2, entity_partial_update_v2
from tests.conftest import free_port
from tools.demo import wait_for

pytestmark = pytest.mark.integration

BIG_SCHEMA = json.dumps({"type": "record", "name": "Wide", "namespace": "t",
                         "doc": "".join(f"{i:08x}" for i in range(20_000)), "fields": []})


@pytest.fixture
def service(isolated, tmp_path):
    admin = clients.admin(isolated)
    admin.create_topics([NewTopic(isolated.topics.atlas_hook, 1, 1)])[isolated.topics.atlas_hook].result(30)
    settings = dataclasses.replace(isolated, lineage_port=free_port())
    running = LineageService(settings, database=str(tmp_path / "lineage.db")).start()
    yield settings, running
    running.stop()


def pipeline(ns="primary"):
    g = e.negative_guids()
    schema = e.avro_schema("feed-value", 1, BIG_SCHEMA, ns, guid=next(g))
    feed = e.kafka_topic("feed", ns, bootstrap_servers="b:9092", guid=next(g), avro_schemas=[schema])
    scored = e.kafka_topic("scored", ns, bootstrap_servers="b:9092", guid=next(g))
    app = e.stream_process("scorer", [feed], [scored], ns, model_name="m", model_version="1", guid=next(g))
    return entity_create_v2([app], [feed, scored, schema], user="test")


def test_hook_messages_become_a_graph_the_official_client_reads(service):
    settings, running = service
    emitter = KafkaHookEmitter(hook_producer(settings), settings.topics.atlas_hook,
                               key="t", max_message_bytes=20_000)  # the schema forces gzip and splitting
    emitter.emit(pipeline())
    emitter.flush()
    wait_for(lambda: running.consumer.applied >= 1, 30, "the lineage service to apply it", poll_s=0.2)
    assert running.graph.rejected() == []

    client = AtlasClient(running.url, ("admin", "admin"))
    scored = client.entity.get_entity_by_attribute("kafka_topic", {"qualifiedName": "scored@primary"}).entity
    assert scored.attributes["topic"] == "scored" and scored.status == "ACTIVE"
    schema = client.entity.get_entity_by_attribute("avro_schema", {"qualifiedName": "feed-value@v1@primary"})
    assert json.loads(schema.entity.attributes["avro_notation"])["doc"].startswith("00000000")

    upstream = client.lineage.get_lineage_info(scored.guid, "INPUT", 3)
    names = {h.attributes["qualifiedName"] for h in upstream.guidEntityMap.values()}
    assert names == {"feed@primary", "scorer@primary", "scored@primary"}
    process = client.entity.get_entity_by_attribute("mlstream_stream_process", {"qualifiedName": "scorer@primary"})
    by_guid = {h.guid: h.attributes["qualifiedName"] for h in upstream.guidEntityMap.values()}
    assert {(by_guid[r.fromEntityId], by_guid[r.toEntityId]) for r in upstream.relations} == {
        ("feed@primary", "scorer@primary"), ("scorer@primary", "scored@primary")}
    downstream = client.lineage.get_lineage_info_attr("kafka_topic", {"qualifiedName": "feed@primary"}, "OUTPUT", 1)
    assert {h.attributes["qualifiedName"] for h in downstream.guidEntityMap.values()} == names
    assert client.lineage.get_lineage_info(scored.guid, "OUTPUT", 3).relations in (None, [])
    assert client.entity.get_entity_by_guid(process.entity.guid).entity.attributes["modelName"] == "m"


def test_rest_writes_typedefs_and_lifecycle_through_the_client(service):
    settings, running = service
    client = AtlasClient(running.url, ("admin", "admin"))
    names = {t.name for t in client.typedef.get_all_typedefs(_AllTypes()).entityDefs}
    assert {"kafka_topic", "ml_model_build", "mlstream_stream_process", "spark_process"} <= names
    custom = {"entityDefs": [{"name": "test_dataset", "superTypes": ["DataSet"], "attributeDefs": []}]}
    client.typedef.create_atlas_typedefs(custom)
    with pytest.raises(AtlasServiceException, match="409"):
        client.typedef.create_atlas_typedefs(custom)
    assert client.typedef.get_entitydef_by_name("test_dataset").name == "test_dataset"

    rest = AtlasRestEmitter(running.url)
    rest.emit(pipeline())
    rest.flush()
    qn = {"qualifiedName": "scorer@primary"}
    before = client.entity.get_entity_by_attribute("mlstream_stream_process", qn).entity
    rest.emit(entity_partial_update_v2(e.object_id("mlstream_stream_process", "scorer@primary"),
                                       {"typeName": "mlstream_stream_process",
                                        "attributes": {"modelVersion": "2"}}, user="test"))
    rest.emit(entity_delete_v2([e.object_id("mlstream_stream_process", "scorer@primary")], user="test"))
    rest.flush()
    after = client.entity.get_entity_by_guid(before.guid).entity
    assert (after.status, after.attributes["modelVersion"], after.attributes["modelName"]) == ("DELETED", "2", "m")
    assert after.updateTime >= before.updateTime
    # A retired process stays in the lineage, marked DELETED; its history keeps every version.
    lineage = client.lineage.get_lineage_info_attr("kafka_topic", {"qualifiedName": "scored@primary"}, "INPUT", 1)
    assert lineage.guidEntityMap[before.guid].status == "DELETED"
    versions = [h["entity"]["attributes"]["modelVersion"] for h in running.graph.history(before.guid)]
    assert versions == ["1", "2", "2"]

    with pytest.raises(AtlasServiceException, match="404"):
        client.entity.get_entity_by_attribute("kafka_topic", {"qualifiedName": "nowhere@primary"})


def test_an_undecodable_hook_value_is_kept_not_dropped(service):
    settings, running = service

    producer = clients.producer(settings)
    producer.produce(settings.topics.atlas_hook, b"not json")
    producer.flush(10)
    wait_for(lambda: running.consumer.rejected >= 1, 30, "the lineage service to apply it", poll_s=0.2)
    [rejected] = running.graph.rejected()
    assert "not JSON" in rejected["reason"] and rejected["notification"] == "not json"


class _AllTypes:
    params: dict = {}


def test_lineage_sent_while_atlas_is_down_is_spooled_then_delivered(isolated, tmp_path, capsys, monkeypatch):
    import dataclasses

    from tools.cli import main
    from mlstream.lineage.emitter import LineageDeliveryError
    from mlstream.lineage.spool import lineage_emitter
    from tests.conftest import free_port

    port = free_port()
    settings = dataclasses.replace(isolated, lineage_port=port, atlas_url=f"http://127.0.0.1:{port}")
    emitter = lineage_emitter(settings, key="test")
    emitter.emit(pipeline())
    with pytest.raises(LineageDeliveryError, match="kept in"):
        emitter.flush()  # nothing listens: kept on disk
    assert len(emitter.spooled()) == 1

    for name, value in settings.to_env().items():
        monkeypatch.setenv(name, value)
    assert main(["lineage", "show", "scored"]) == 2
    assert "no lineage service at" in capsys.readouterr().err

    admin = clients.admin(settings)
    admin.create_topics([NewTopic(settings.topics.atlas_hook, 1, 1)])[settings.topics.atlas_hook].result(30)
    running = LineageService(settings, database=str(tmp_path / "lineage.db")).start()
    try:
        restarted = lineage_emitter(settings, key="test")
        restarted.flush()  # sends what was kept
        assert restarted.spooled() == []
        client = AtlasClient(running.url, ("admin", "admin"))
        assert client.entity.get_entity_by_attribute("kafka_topic", {"qualifiedName": "scored@primary"}).entity
    finally:
        running.stop()
