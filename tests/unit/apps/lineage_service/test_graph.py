"""The embedded lineage graph (SQLite) and the spooling emitter, without Kafka."""

from __future__ import annotations

import sqlite3

import pytest

from apps.lineage_service.errors import AtlasError, BadRequest, EntityNotFound
from apps.lineage_service.graph import LineageGraph
from mlstream.identifiers import build_crn
from mlstream.lineage import entities as e
from mlstream.lineage import lifecycle, spool
from mlstream.lineage.emitter import LineageDeliveryError
from mlstream.lineage.hook import entity_create_v2, entity_delete_v2, entity_partial_update_v2


def chain(graph: LineageGraph, n: int) -> None:
    """topic0 -> p0 -> topic1 -> p1 -> ... -> topic<n>, one message per process."""
    for i in range(n):
        g = e.negative_guids()
        src = e.kafka_topic(f"t{i}", bootstrap_servers="b", guid=next(g))
        dst = e.kafka_topic(f"t{i + 1}", bootstrap_servers="b", guid=next(g))
        process = e.stream_process(f"p{i}", [src], [dst], model_name="m", model_version="1", guid=next(g))
        assert "rejected" not in graph.apply(entity_create_v2([process], [src, dst], user="u"))


def names(lineage: dict) -> list[str]:
    return sorted(h["attributes"]["qualifiedName"].split("@")[0] for h in lineage["guidEntityMap"].values())


def test_depth_counts_processes_and_direction_is_respected():
    graph = LineageGraph(":memory:")
    chain(graph, 3)
    t2 = graph.entity_by_unique("kafka_topic", "t2@primary")["guid"]
    assert names(graph.lineage(t2, "INPUT", 1)) == ["p1", "t1", "t2"]
    assert names(graph.lineage(t2, "INPUT", 5)) == ["p0", "p1", "t0", "t1", "t2"]
    assert names(graph.lineage(t2, "OUTPUT", 5)) == ["p2", "t2", "t3"]
    assert names(graph.lineage(t2, "BOTH", 1)) == ["p1", "p2", "t1", "t2", "t3"]
    p1 = graph.entity_by_unique("mlstream_stream_process", "p1@primary")["guid"]
    assert names(graph.lineage(p1, "INPUT", 1)) == ["p1", "t1"]
    with pytest.raises(ValueError):
        graph.lineage(t2, "SIDEWAYS", 1)


def test_a_reference_to_an_unknown_entity_becomes_a_placeholder_filled_in_later():
    graph = LineageGraph(":memory:")
    g = e.negative_guids()
    out = e.kafka_topic("out", bootstrap_servers="b", guid=next(g))
    process = e.stream_process("p", [e.object_id("kafka_topic", "later@primary")], [out], model_name="m",
                               model_version="1", guid=next(g))
    graph.apply(entity_create_v2([process], [out], user="u"))
    placeholder = graph.entity_by_unique("kafka_topic", "later@primary")
    assert placeholder["isIncomplete"] and placeholder["attributes"] == {"qualifiedName": "later@primary"}
    result = graph.apply(entity_create_v2([e.kafka_topic("later", bootstrap_servers="b", guid="-1")], user="u"))
    assert [h["guid"] for h in result["mutatedEntities"]["CREATE"]] == [placeholder["guid"]]
    assert not graph.entity_by_unique("kafka_topic", "later@primary")["isIncomplete"]


def test_rest_create_refuses_a_dangling_reference_and_changes_nothing():
    graph = LineageGraph(":memory:")
    g = e.negative_guids()
    out = e.kafka_topic("out", bootstrap_servers="b", guid=next(g))
    process = e.stream_process("p", [e.object_id("kafka_topic", "missing@primary")], [out], model_name="m",
                               model_version="1", guid=next(g))
    with pytest.raises(EntityNotFound, match="missing@primary"):
        graph.create_entities({"entities": [out, process]})
    with pytest.raises(EntityNotFound):
        graph.entity_by_unique("kafka_topic", "out@primary")


def test_updates_and_deletes_keep_history_and_bad_notifications_are_kept():
    graph = LineageGraph(":memory:")
    chain(graph, 1)
    p0 = e.object_id("mlstream_stream_process", "p0@primary")
    graph.apply(entity_partial_update_v2(p0, {"typeName": p0["typeName"], "attributes": {"modelVersion": "7"}},
                                         user="u"))
    graph.apply(entity_delete_v2([p0], user="u"))
    entity = graph.entity_by_unique(p0["typeName"], "p0@primary")
    assert entity["status"] == "DELETED" and entity["attributes"]["modelVersion"] == "7"
    assert [h["action"] for h in graph.history(entity["guid"])] == ["ENTITY_CREATE", "ENTITY_UPDATE", "ENTITY_DELETE"]
    assert "rejected" in graph.apply(entity_delete_v2([e.object_id("kafka_topic", "nope@primary")], user="u"))
    assert "nope@primary" in graph.rejected()[0]["reason"]


def test_replaced_relationships_are_soft_deleted_and_lineage_follows_the_current_ones():
    graph = LineageGraph(":memory:")
    chain(graph, 2)  # t0 -> p0 -> t1 -> p1 -> t2
    g = e.negative_guids()
    other = e.kafka_topic("other", bootstrap_servers="b", guid=next(g))
    moved = e.stream_process("p1", [other], [e.object_id("kafka_topic", "t2@primary")], model_name="m",
                             model_version="1", guid=next(g))
    graph.apply(entity_create_v2([moved], [other], user="u"))  # p1 now reads "other", not t1
    p1 = graph.guid_of("mlstream_stream_process", "p1@primary")
    inputs = [r for r in graph.relationships_of(p1) if r["typeName"] == "dataset_process_inputs"]
    assert [(r["end2"]["uniqueAttributes"]["qualifiedName"], r["status"]) for r in inputs] == \
        [("t1@primary", "DELETED"), ("other@primary", "ACTIVE")]
    assert all(r["end1"]["guid"] == p1 and r["label"] == "__Process.inputs" for r in inputs)
    t2 = graph.guid_of("kafka_topic", "t2@primary")
    assert names(graph.lineage(t2, "INPUT", 5)) == ["other", "p1", "t2"]
    process = graph.entity(p1)["entity"]
    assert [i["uniqueAttributes"]["qualifiedName"] for i in process["attributes"]["inputs"]] == ["other@primary"]
    [current] = process["relationshipAttributes"]["inputs"]
    assert (current["relationshipType"], current["relationshipStatus"]) == ("dataset_process_inputs", "ACTIVE")
    found = graph.relationship(current["relationshipGuid"])
    assert set(found["referredEntities"]) == {p1, current["guid"]} and found["relationship"]["propagateTags"] == \
        "TWO_TO_ONE"
    with pytest.raises(EntityNotFound, match="ATLAS-404-00-00C|relationship guid"):
        graph.relationship("nope")


def test_a_delete_keeps_the_entity_in_the_lineage_cascades_to_contained_ones_and_frees_the_name():
    graph = LineageGraph(":memory:")
    chain(graph, 1)
    graph.apply(entity_create_v2([e.ml_model_build(build_crn("m", "1"), "m", 1, guid="-1")], user="u"))
    [deploy] = lifecycle.deploy("m", 1, "app", deployed_at_ms=1, user="u")
    assert "rejected" not in graph.apply(deploy)
    build_guid = graph.guid_of("ml_model_build", build_crn("m", "1"))
    deleted = graph.delete_guids([build_guid], user="u")["mutatedEntities"]["DELETE"]
    # ml_build_deployment is a COMPOSITION the build contains: its deployment goes with it, as in Atlas
    assert [(h["typeName"], h["status"]) for h in deleted] == [("ml_model_build", "DELETED"),
                                                               ("ml_model_deployment", "DELETED")]
    assert graph.delete_guids([build_guid, "no-such-guid"]) == {}  # already deleted, unknown: nothing to do
    assert {r["typeName"]: r["status"] for r in graph.relationships_of(build_guid)} == \
        {"ml_build_deployment": "DELETED", "dataset_process_inputs": "DELETED"}

    t0 = graph.guid_of("kafka_topic", "t0@primary")
    graph.delete_guids([t0])
    t1 = graph.guid_of("kafka_topic", "t1@primary")
    assert names(graph.lineage(t1, "INPUT", 1)) == ["p0", "t0", "t1"]  # a deleted input stays in the lineage
    assert graph.lineage(t1, "INPUT", 1)["guidEntityMap"][t0]["status"] == "DELETED"
    again = graph.apply(entity_create_v2([e.kafka_topic("t0", bootstrap_servers="b", guid="-1")], user="u"))
    [created] = again["mutatedEntities"]["CREATE"]
    assert created["guid"] != t0 and graph.guid_of("kafka_topic", "t0@primary") == created["guid"]
    assert graph.entity(t0)["entity"]["status"] == "DELETED"


def test_an_update_that_changes_nothing_is_not_an_update():
    graph = LineageGraph(":memory:")
    chain(graph, 1)
    p0 = graph.guid_of("mlstream_stream_process", "p0@primary")
    version = graph.entity(p0)["entity"]["version"]
    chain(graph, 1)  # the same message again, as a restarted app sends it
    assert graph.entity(p0)["entity"]["version"] == version
    assert [h["action"] for h in graph.history(p0)] == ["ENTITY_CREATE"]


def test_entities_must_fit_their_types_and_unknown_attributes_are_dropped():
    graph = LineageGraph(":memory:")
    no_uri = {"typeName": "kafka_topic", "guid": "-1", "attributes": {"qualifiedName": "x@primary", "name": "x",
                                                                      "topic": "x"}}
    result = graph.apply(entity_create_v2([no_uri], user="u"))
    assert "missing required attribute 'uri'" in result["rejected"]
    with pytest.raises(BadRequest) as raised:
        graph.create_entities({"entities": [no_uri]})
    assert (raised.value.status, raised.value.code) == (404, "ATLAS-404-00-007")  # Atlas's code for it, really
    with pytest.raises(BadRequest, match="ATLAS-400-00-014|Type ENTITY with name nope"):
        graph.create_entities({"entities": [{"typeName": "nope", "attributes": {"qualifiedName": "x"}}]})
    topic = e.kafka_topic("x", bootstrap_servers="b", guid="-1")
    topic["attributes"]["colour"] = "red"
    topic["proxy"] = False  # a field the official client sends
    graph.create_entities({"entities": [topic]})
    assert "colour" not in graph.entity_by_unique("kafka_topic", "x@primary")["attributes"]
    assert graph.entity_by_unique("DataSet", "x@primary")["typeName"] == "kafka_topic"  # subtypes are looked up


def test_one_attribute_by_guid_classifications_and_labels():
    graph = LineageGraph(":memory:")
    graph.add_typedefs({"classificationDefs": [{"name": "PII", "attributeDefs": [
        {"name": "level", "typeName": "string", "isOptional": True}]}]})
    with pytest.raises(AtlasError, match="already exists"):
        graph.add_typedefs({"classificationDefs": [{"name": "PII", "attributeDefs": []}]})
    chain(graph, 1)
    t0 = graph.guid_of("kafka_topic", "t0@primary")
    graph.update_attribute(t0, "partitionCount", 6)
    assert graph.entity(t0)["entity"]["attributes"]["partitionCount"] == 6
    for name, value, code in [("nope", 1, "ATLAS-400-00-023"), ("inputToProcesses", t0, "ATLAS-400-00-027")]:
        with pytest.raises(BadRequest) as raised:
            graph.update_attribute(t0, name, value)
        assert raised.value.code == code
    graph.add_classifications(t0, [{"typeName": "PII", "attributes": {"level": "high"}}], user="u")
    with pytest.raises(BadRequest, match="already is associated"):
        graph.add_classifications(t0, [{"typeName": "PII"}])
    with pytest.raises(EntityNotFound, match="classification Secret was invalid"):
        graph.add_classifications(t0, [{"typeName": "Secret"}])
    graph.update_classifications(t0, [{"typeName": "PII", "attributes": {"level": "low"}}], user="u")
    [pii] = graph.classifications(t0)
    assert (pii["attributes"], pii["entityGuid"], pii["propagate"]) == ({"level": "low"}, t0, True)
    assert graph.header(t0)["classificationNames"] == ["PII"]
    graph.delete_classification(t0, "PII", user="u")
    with pytest.raises(EntityNotFound):
        graph.delete_classification(t0, "PII")
    graph.change_labels(t0, ["raw", "kafka"], "set")
    graph.change_labels(t0, ["raw"], "remove")
    assert graph.entity(t0)["entity"]["labels"] == ["kafka"]
    assert [h["action"] for h in graph.history(t0)][-6:] == [
        "ENTITY_UPDATE", "CLASSIFICATION_ADD", "CLASSIFICATION_UPDATE", "CLASSIFICATION_DELETE", "LABEL_ADD",
        "LABEL_DELETE"]
    assert graph.history(t0)[-3]["details"] == "Deleted classification: PII"


def test_a_database_of_an_older_schema_is_moved_aside(tmp_path):
    path = tmp_path / "lineage.db"
    old = sqlite3.connect(path)
    old.execute("CREATE TABLE edges (process TEXT)")
    old.commit()
    old.close()
    graph = LineageGraph(str(path))
    chain(graph, 1)
    assert (tmp_path / "lineage.db.schema0").exists()
    assert LineageGraph(str(path)).guid_of("kafka_topic", "t0@primary")  # the new file reopens as it is


def test_spooled_notifications_survive_a_restart_and_are_sent_in_order(tmp_path):
    class Flaky(list):
        up = False

        def emit(self, note):
            self.append(note)

        def flush(self, timeout=30.0):
            if not self.up:
                self.clear()
                raise LineageDeliveryError("down")

    inner = Flaky()
    first = spool.SpoolingEmitter(inner, tmp_path)
    for i in range(3):
        first.emit({"n": i})
        with pytest.raises(LineageDeliveryError, match="kept in"):
            first.flush()
    assert len(first.spooled()) == 3
    inner.up = True
    restarted = spool.SpoolingEmitter(inner, tmp_path)
    restarted.emit({"n": 3})
    restarted.flush()
    assert [note["n"] for note in inner] == [0, 1, 2, 3] and restarted.spooled() == []
