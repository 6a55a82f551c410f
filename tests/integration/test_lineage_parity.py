"""Parity with Atlas: the project's own hook messages, replayed through Kafka into the lineage service, make
the graph Atlas's rules make. The rules are restated here, apart from the service's code (``AtlasRules``):

* an entity is its typeName + qualifiedName; a create of one that exists (and is not deleted) updates it,
  only the attributes it carries; a reference to one nobody created yet makes a shell entity;
* a relationship attribute (in ``relationshipAttributes``, or an attribute that is a relationship end) is a
  relationship between the two entities, its ends ordered as the relationshipDef orders them; setting the
  attribute again soft-deletes the relationships left out;
* a delete soft-deletes the entity (status DELETED), its relationships, and the entities it contains
  (COMPOSITION ends marked isContainer); its qualifiedName is then free: a create makes a new entity.

The graph is read back with the official client only (search, entities, audit events, relationships by
guid, metrics), and every message is first checked against Atlas's typedefs, as the emitters check them.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import Any

import pytest
from apache_atlas.client.base_client import AtlasClient
from apache_atlas.client.relationship import RelationshipClient

from apps.lineage_service.service import LineageService
from apps.linker.lineage import feed_notification as linkage_feed_notification
from apps.linker.lineage import linkage_app_notification
from apps.scorer.lineage import LineageReporter
from linkage.config import LinkageConfig
from mlstream.config_store import SchemaRegistryConfigStore
from mlstream.kafka.clients import registry_client
from mlstream.kafka.topics import init
from mlstream.lineage import entities as e
from mlstream.lineage import lifecycle
from mlstream.lineage.emitter import KafkaHookEmitter, hook_producer
from mlstream.lineage.feeds import feed_notification
from mlstream.lineage.hook import entity_create_v2, entity_delete_v2
from mlstream.lineage.typesystem import TypeSystem
from spark_jobs.lineage import job_notification
from tests.conftest import free_port
from tools.demo import wait_for
from tools.lineage_demo import demo_lineage_yaml

pytestmark = pytest.mark.integration

Key = tuple[str, str, int]  # typeName, qualifiedName, which entity of that name (0 first, 1 after a delete...)


class AtlasRules:
    """What Atlas makes of V2 hook notifications, restated plainly: a list of entities and relationships."""

    def __init__(self, types: TypeSystem) -> None:
        self.types = types
        self.entities: list[dict] = []       # {"key", "status", "attributes", "shell"}
        self.relationships: list[dict] = []  # {"type", "end1", "end2", "status"} with entity indexes

    def find(self, type_name: str, qualified_name: str, *, subtypes: bool) -> int | None:
        for index, entity in enumerate(self.entities):
            t, q, _ = entity["key"]
            if q == qualified_name and entity["status"] == "ACTIVE" and (
                    t == type_name or (subtypes and self.types.is_subtype(t, type_name))):
                return index
        return None

    def new(self, type_name: str, qualified_name: str, *, shell: bool) -> int:
        generation = sum(1 for x in self.entities if x["key"][:2] == (type_name, qualified_name))
        self.entities.append({"key": (type_name, qualified_name, generation), "status": "ACTIVE",
                              "attributes": {"qualifiedName": qualified_name}, "shell": shell})
        return len(self.entities) - 1

    def apply(self, note: dict) -> None:
        if note["type"] in ("ENTITY_CREATE_V2", "ENTITY_FULL_UPDATE_V2"):
            body = note["entities"]
            given = [*body["entities"], *body.get("referredEntities", {}).values()]
            by_guid = {}
            for entity in given:
                name = entity["attributes"]["qualifiedName"]
                index = self.find(entity["typeName"], name, subtypes=False)
                by_guid[entity["guid"]] = self.new(entity["typeName"], name, shell=False) if index is None else index
            for entity in given:
                self.write(by_guid[entity["guid"]], entity, by_guid)
        elif note["type"] == "ENTITY_PARTIAL_UPDATE_V2":
            target = note["entityId"]
            index = self.find(target["typeName"], target["uniqueAttributes"]["qualifiedName"], subtypes=True)
            self.write(index, note["entity"]["entity"], {})
        elif note["type"] == "ENTITY_DELETE_V2":
            for target in note["entities"]:
                self.delete(self.find(target["typeName"], target["uniqueAttributes"]["qualifiedName"], subtypes=True))

    def write(self, index: int, entity: dict, by_guid: dict) -> None:
        ends = self.types.relationship_ends(entity["typeName"])
        self.entities[index]["shell"] = False
        relationship_values = dict(entity.get("relationshipAttributes") or {})
        for name, value in entity["attributes"].items():
            if name in ends and isinstance(value, list) and all(isinstance(v, dict) and "typeName" in v for v in value):
                relationship_values.setdefault(name, value)
            else:
                self.entities[index]["attributes"][name] = value
        for name, value in relationship_values.items():
            wanted = []
            for reference in value if isinstance(value, list) else [value]:
                other = by_guid.get(reference.get("guid"))
                if other is None:
                    unique = reference["uniqueAttributes"]["qualifiedName"]
                    other = self.find(reference["typeName"], unique, subtypes=True)
                    if other is None:
                        other = self.new(reference["typeName"], unique, shell=True)
                end = next(x for x in ends[name] if reference.get("relationshipType") in (None, x.relationship)
                           and self.types.is_subtype(self.entities[other]["key"][0], x.other_type))
                wanted.append((end.relationship, (index, other) if end.end == 1 else (other, index)))
            names = {x.relationship: x.end for x in ends[name]}
            for relationship in self.relationships:
                mine = relationship["end1" if names.get(relationship["type"]) == 1 else "end2"] == index
                if relationship["type"] in names and mine and relationship["status"] == "ACTIVE" and \
                        (relationship["type"], (relationship["end1"], relationship["end2"])) not in wanted:
                    relationship["status"] = "DELETED"
            for relationship_type, (end1, end2) in wanted:
                if not any(r["type"] == relationship_type and (r["end1"], r["end2"]) == (end1, end2)
                           and r["status"] == "ACTIVE" for r in self.relationships):
                    self.relationships.append({"type": relationship_type, "end1": end1, "end2": end2,
                                               "status": "ACTIVE"})

    def delete(self, index: int) -> None:
        if self.entities[index]["status"] == "DELETED":
            return
        self.entities[index]["status"] = "DELETED"
        for relationship in self.relationships:
            if index in (relationship["end1"], relationship["end2"]) and relationship["status"] == "ACTIVE":
                relationship["status"] = "DELETED"
                definition = self.types.relationship_defs[relationship["type"]]
                own = "endDef1" if relationship["end1"] == index else "endDef2"
                if definition["relationshipCategory"] == "COMPOSITION" and definition[own].get("isContainer"):
                    self.delete(relationship["end2"] if own == "endDef1" else relationship["end1"])


class Recording(list):
    """An emitter that keeps what the project's reporters send."""

    def emit(self, note: dict) -> None:
        self.append(note)

    def flush(self, timeout: float = 30.0) -> None:
        pass


def project_notifications(settings, registry) -> list[dict]:
    """What the project's code sends over a life: feeds, the scorer (restarted, with a new config), its model
    builds and deployment (deploy, redeploy, rollback, retire), the linker and its feed, Spark jobs; and the
    deletes an operator does (a retired linker, a dead-letter topic that is then reported again)."""
    notes: list[dict] = []
    notes.append(feed_notification(settings, registry, source="river/phishing", seed=42, started_at_ms=1))
    store = SchemaRegistryConfigStore(registry, settings.topics.prefix)
    store.put("lineage", demo_lineage_yaml(settings))
    first = Recording()
    LineageReporter(settings, registry, store=store, emitter=first).poll()
    notes += first
    notes += first  # the app restarted: the same report again
    notes.append(feed_notification(settings, registry, source="river/phishing", seed=42, started_at_ms=1,
                                   records_sent=1000))
    notes += lifecycle.redeploy(settings.model, 2, settings.app_id, deployed_at_ms=3, user="mlstream")
    notes += lifecycle.rollback(settings.model, 1, settings.app_id, deployed_at_ms=4, user="mlstream")
    config = LinkageConfig.from_file("febrl")
    notes.append(linkage_app_notification(settings, "linker", registry, config, "1", started_at_ms=5))
    notes.append(linkage_feed_notification(settings, registry, "febrl", "FEBRL people"))
    notes.append(job_notification("decode", [("topic", settings.topics.records)],
                                  [("table", "mlstream.records", False), ("s3", "s3a://lake/records/2024")],
                                  namespace="primary", database="mlstream", bootstrap_servers="b:9092", user="spark"))
    notes.append(entity_delete_v2([e.object_id(e.STREAM_PROCESS, "linker@primary")], user="operator"))
    notes.append(entity_delete_v2([e.object_id(e.KAFKA_TOPIC, f"{settings.topics.dead_letters}@primary")],
                                  user="operator"))
    notes.append(lifecycle.retire(settings.model, settings.app_id, retired_at_ms=6, user="mlstream"))
    notes += first  # the scorer starts again: its dead-letter topic is a new entity
    notes.append(entity_delete_v2([e.object_id(e.ML_MODEL_BUILD, f"crn:mlstream:ml:local:model/{settings.model}/build/"
                                                                  f"{settings.model_version}")], user="operator"))
    notes.append(entity_create_v2([e.kafka_topic("unrelated", bootstrap_servers="b:9092", guid="-1")], user="u"))
    return notes


def test_replayed_project_messages_make_the_graph_atlas_rules_make(isolated, tmp_path):
    settings = dataclasses.replace(isolated, lineage_port=free_port())
    init(settings, say=lambda line: None)
    registry = registry_client(settings)
    notes = project_notifications(settings, registry)
    types = TypeSystem.load()
    assert [types.validate_notification(n) for n in notes] == [[]] * len(notes)  # as the emitters check them
    expected = AtlasRules(types)
    for note in notes:
        expected.apply(note)
    assert {x["key"][0] for x in expected.entities} >= {"ml_model_deployment", "spark_process",
                                                        "aws_s3_v2_directory", "mlstream_feed_process"}

    service = LineageService(settings, database=str(tmp_path / "lineage.db")).start()
    try:
        emitter = KafkaHookEmitter(hook_producer(settings), settings.topics.atlas_hook,
                                   key="replay")
        for note in notes:
            emitter.emit(note)
        emitter.flush()
        wait_for(lambda: service.consumer.applied + service.consumer.rejected >= len(notes), 60,
                 "the lineage service to apply the replay", poll_s=0.3)
        assert service.graph.rejected() == []
        client = AtlasClient(service.url, ("admin", "admin"))
        compare(client, expected)
    finally:
        service.stop()


def compare(client: AtlasClient, expected: AtlasRules) -> None:
    # Every entity, deleted ones included, through basic search (all types, deleted not excluded).
    found = client.discovery.faceted_search({"typeName": "_ALL_ENTITY_TYPES", "limit": 10000})
    guids = [h.guid for h in found.entities]
    entities = {x.guid: x for x in client.entity.get_entities_by_guids(guids).entities}
    # A name's entities in creation order: the key of each is (type, qualifiedName, its place in that order).
    keys: dict[str, Key] = {}
    by_name: dict[tuple[str, str], list] = {}
    for entity in sorted(entities.values(), key=lambda x: (x.createTime, x.guid)):
        by_name.setdefault((entity.typeName, entity.attributes["qualifiedName"]), []).append(entity)
    for (type_name, name), versions in by_name.items():
        assert sum(v.status == "ACTIVE" for v in versions) <= 1, f"two active {type_name} {name}"  # uniqueness
        for generation, entity in enumerate(versions):
            keys[entity.guid] = (type_name, name, generation)

    assert sorted(keys.values()) == sorted(x["key"] for x in expected.entities)
    by_key = {key: entities[guid] for guid, key in keys.items()}
    for wanted in expected.entities:
        got = by_key[wanted["key"]]
        assert (got.status, got.isIncomplete) == (wanted["status"], wanted["shell"]), wanted["key"]
        ends = set(got.relationshipAttributes or {})
        shown = {k: v for k, v in got.attributes.items() if k not in ends}
        assert {k: shown.get(k) for k in wanted["attributes"]} == wanted["attributes"], wanted["key"]

    # Every relationship ever made, replaced and deleted ones included: the current ones from the entities,
    # the earlier ones from the entity snapshots in the audit events.
    relationship_guids: set[str] = set()

    def collect(snapshot: dict[str, Any]) -> None:
        for value in (snapshot.get("relationshipAttributes") or {}).values():
            for related in value if isinstance(value, list) else [value] if value else []:
                relationship_guids.add(related["relationshipGuid"])

    for guid, entity in entities.items():
        collect(entity)
        for event in client.entity.get_audit_events(guid, None, None, 1000):
            collect(event["entity"])
    got_relationships = Counter()
    for guid in relationship_guids:
        relationship = client.call_api(RelationshipClient.GET_RELATIONSHIP_BY_GUID.format_path_with_params(guid),
                                       dict)["relationship"]
        got_relationships[(relationship["typeName"], keys[relationship["end1"]["guid"]],
                           keys[relationship["end2"]["guid"]], relationship["status"])] += 1
    wanted_relationships = Counter(
        (r["type"], expected.entities[r["end1"]]["key"], expected.entities[r["end2"]]["key"], r["status"])
        for r in expected.relationships)
    assert got_relationships == wanted_relationships
    assert {status for _, _, _, status in got_relationships} == {"ACTIVE", "DELETED"}

    metrics = client.admin.get_metrics()
    counted = {status: dict(Counter(x["key"][0] for x in expected.entities if x["status"] == status and not x["shell"]))
               for status in ("ACTIVE", "DELETED")}
    assert (metrics.entity["entityActive"], metrics.entity["entityDeleted"]) == (counted["ACTIVE"], counted["DELETED"])
    assert metrics.entity["entityShell"] == dict(Counter(x["key"][0] for x in expected.entities if x["shell"]))
