"""The embedded lineage graph (SQLite) and the spooling emitter, without Kafka."""

from __future__ import annotations

import doctest

import pytest

from mlstream.lineage import entities as e
from apps.lineage_service import graph as graph_module
from mlstream.lineage import spool
from mlstream.lineage.emitter import LineageDeliveryError
from apps.lineage_service.graph import EntityNotFound, LineageGraph
from mlstream.lineage.hook import entity_create_v2, entity_delete_v2, entity_partial_update_v2


def test_doctests():
    for module in (graph_module, spool):
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        assert result.attempted > 0 and result.failed == 0, module.__name__


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
