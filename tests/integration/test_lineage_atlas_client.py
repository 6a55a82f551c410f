"""The embedded lineage service through the official apache-atlas client only: search, entities, classifications,
relationships, typedefs, glossary, metrics, errors; and the atlas_client_tour example against it."""

from __future__ import annotations

import dataclasses

import pytest
import requests
from apache_atlas.client.base_client import AtlasClient
from apache_atlas.client.relationship import RelationshipClient
from apache_atlas.exceptions import AtlasServiceException
from apache_atlas.model.discovery import SearchParameters
from apache_atlas.model.glossary import AtlasGlossary, AtlasGlossaryHeader, AtlasGlossaryTerm
from apache_atlas.model.instance import AtlasClassification, AtlasEntity, AtlasEntityWithExtInfo, AtlasRelatedObjectId
from apache_atlas.model.misc import SearchFilter
from confluent_kafka.admin import NewTopic

from apps.lineage_service.service import LineageService
from mlstream.identifiers import build_crn
from mlstream.kafka import clients
from mlstream.lineage import entities as e
from mlstream.lineage import lifecycle
from mlstream.lineage.emitter import KafkaHookEmitter, hook_producer
from mlstream.lineage.hook import entity_create_v2
from tests.conftest import free_port, isolated_settings
from tools.demo import wait_for
from tools.examples import atlas_client_tour

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def running(services, tmp_path_factory):
    """A lineage service fed through Kafka with a feed, a scorer, two builds and a deployment."""
    settings = isolated_settings(services, tmp_path_factory.mktemp("atlas-client"))
    settings = dataclasses.replace(settings, lineage_port=free_port())
    admin = clients.admin(settings)
    admin.create_topics([NewTopic(settings.topics.atlas_hook, 1, 1)])[settings.topics.atlas_hook].result(30)
    service = LineageService(settings, database=str(tmp_path_factory.mktemp("graph") / "lineage.db")).start()
    emitter = KafkaHookEmitter(hook_producer(settings), settings.topics.atlas_hook, key="t")
    notes = project_notifications()
    for note in notes:
        emitter.emit(note)
    emitter.flush()
    wait_for(lambda: service.consumer.applied >= len(notes), 60, "the lineage service to apply them", poll_s=0.2)
    assert service.graph.rejected() == []
    yield AtlasClient(service.url, ("alice", "secret")), service
    service.stop()


def project_notifications() -> list[dict]:
    g = e.negative_guids()
    source = e.source_dataset("river/phishing", guid=next(g), seed=42)
    records = e.kafka_topic("mlstream.records", bootstrap_servers="b:9092", guid=next(g), partition_count=3)
    labels = e.kafka_topic("mlstream.labels", bootstrap_servers="b:9092", guid=next(g))
    predictions = e.kafka_topic("mlstream.predictions", bootstrap_servers="b:9092", guid=next(g))
    feed = e.feed_process(source, [records, labels], "mlstream.records", guid=next(g), records_sent=1000)
    scorer = e.stream_process("mlstream-scorer", [records, labels], [predictions], model_name="churn",
                              model_version="2", guid=next(g), description="scores every record with churn")
    notes = [entity_create_v2([feed, scorer], [source, records, labels, predictions], user="mlstream")]
    for version in (1, 2):
        g = e.negative_guids()
        build = e.ml_model_build(build_crn("churn", str(version)), "churn", version, guid=next(g),
                                 metadata={"features": "amount,age"})
        train = e.ml_train_build_process(build, [e.object_id("kafka_topic", "mlstream.records@primary")],
                                         user="mlstream", guid=next(g))
        notes.append(entity_create_v2([train], [build], user="mlstream"))
    notes += lifecycle.deploy("churn", 1, "mlstream-scorer", deployed_at_ms=1000, user="mlstream")
    notes += lifecycle.redeploy("churn", 2, "mlstream-scorer", deployed_at_ms=2000, user="mlstream")
    return notes


def guid_of(client: AtlasClient, type_name: str, qualified_name: str) -> str:
    return client.entity.get_entity_by_attribute(type_name, {"qualifiedName": qualified_name}).entity.guid


def error_of(call, *args) -> str:
    with pytest.raises(AtlasServiceException) as raised:
        call(*args)
    return str(raised.value)


def test_search_finds_what_read_a_topic(running):
    client, _ = running
    builds = client.discovery.basic_search("ml_model_build", None, None, True, "version", "DESCENDING")
    assert [h.attributes["qualifiedName"] for h in builds.entities] == \
        [build_crn("churn", "2"), build_crn("churn", "1")]
    assert builds.approximateCount == 2 and builds.queryType == "BASIC"
    text = client.discovery.basic_search(None, None, "churn", True)
    assert "mlstream-scorer@primary" in {h.attributes["qualifiedName"] for h in text.entities}
    readers = client.discovery.dsl_search("Process where name like 'train churn*' orderby name")
    assert [h.displayText for h in readers.entities] == ["train churn build 1", "train churn build 2"]
    dsl = client.discovery.dsl_search_with_params("kafka_topic where partitionCount > 1 or name = 'mlstream.labels'",
                                                  10, 0)
    assert {h.displayText for h in dsl.entities} == {"mlstream.records", "mlstream.labels"}
    selected = client.discovery.dsl_search("ml_model_build select name, version orderby version")
    assert selected.attributes.values == [["churn build 1", 1], ["churn build 2", 2]]
    assert client.discovery.dsl_search("kafka_topic where name = 'nothing'").entities is None  # Atlas leaves it out
    assert "ATLAS-400-00-059" in error_of(client.discovery.dsl_search, "kafka_topic where")
    assert "ATLAS-400-00-05B" in error_of(client.discovery.dsl_search, "no_such_type")

    faceted = client.discovery.faceted_search(SearchParameters({
        "typeName": "kafka_topic", "excludeDeletedEntities": True, "attributes": ["partitionCount"],
        "entityFilters": {"condition": "OR", "criterion": [
            {"attributeName": "partitionCount", "operator": "gte", "attributeValue": "3"},
            {"attributeName": "name", "operator": "endsWith", "attributeValue": "predictions"}]}}))
    assert sorted((h.displayText, h.attributes.get("partitionCount")) for h in faceted.entities) == \
        [("mlstream.predictions", None), ("mlstream.records", 3)]
    quick = client.discovery.quick_search("mlstream", "kafka_topic", True, 2, 0)
    assert quick.searchResults.approximateCount == 3 and len(quick.searchResults.entities) == 2
    posted = client.discovery.quick_search_with_param({"query": "phishing", "limit": 5})
    assert [h.typeName for h in posted.searchResults.entities] == ["mlstream_source_dataset", "mlstream_feed_process"]
    prefix = client.discovery.attribute_search("kafka_topic", None, "mlstream.l", 10, 0)
    assert [h.displayText for h in prefix.entities] == ["mlstream.labels"]
    full = client.discovery.full_text_search_with_params("scores churn", 10, 0)
    assert [r["entity"]["displayText"] for r in full.fullTextResult] == ["mlstream-scorer"]
    records = guid_of(client, "kafka_topic", "mlstream.records@primary")
    related = client.discovery.relationship_search(records, "inputToProcesses", "name", None, True, 10, 0)
    assert [h.displayText for h in related.entities] == [
        "mlstream-scorer", "train churn build 1", "train churn build 2"]
    assert "ATLAS-400-00-047" in error_of(client.discovery.basic_search, None, None, None, False)
    assert "ATLAS-400-00-00A" in error_of(client.discovery.basic_search, "no_such_type", None, None, False)


def test_entities_in_bulk_headers_partial_updates_and_soft_deletes(running):
    client, service = running
    topics = ["mlstream.records@primary", "mlstream.labels@primary"]
    by_name = client.entity.get_entities_by_attribute("kafka_topic", [{"qualifiedName": q} for q in topics])
    assert [x.attributes["qualifiedName"] for x in by_name.entities] == topics
    guids = [x.guid for x in by_name.entities]
    by_guid = client.entity.get_entities_by_guids(guids)
    assert [x.guid for x in by_guid.entities] == guids
    inputs = by_guid.entities[0].relationshipAttributes["inputToProcesses"]
    assert {i["relationshipType"] for i in inputs} == {"dataset_process_inputs"}
    header = client.entity.get_entity_header_by_guid(guids[0])
    assert (header.typeName, header.displayText, header.status) == ("kafka_topic", "mlstream.records", "ACTIVE")
    assert client.entity.get_entity_header_by_attribute("kafka_topic", {"qualifiedName": topics[1]}).guid == guids[1]

    result = client.entity.partial_update_entity_by_guid(guids[1], "labels, late", "description")
    assert [h.guid for h in result.mutatedEntities["PARTIAL_UPDATE"]] == [guids[1]]
    assert client.entity.get_entity_by_guid(guids[1]).entity.attributes["description"] == "labels, late"
    assert "ATLAS-400-00-023" in error_of(client.entity.partial_update_entity_by_guid, guids[1], 1, "colour")

    g = e.negative_guids()
    spare = e.kafka_topic("spare", bootstrap_servers="b:9092", guid=next(g))
    created = client.entity.create_entity(AtlasEntityWithExtInfo({"entity": AtlasEntity(spare)}))
    spare_guid = created.guidAssignments[spare["guid"]]
    deleted = client.entity.delete_entity_by_guid(spare_guid)
    assert [(h.guid, h.status) for h in deleted.mutatedEntities["DELETE"]] == [(spare_guid, "DELETED")]
    after = client.entity.get_entity_by_guid(spare_guid).entity
    assert after.status == "DELETED" and after.attributes["topic"] == "spare"
    assert client.entity.delete_entity_by_guid(spare_guid).mutatedEntities is None  # already deleted: nothing
    live = client.discovery.basic_search("kafka_topic", None, "spare", True)
    assert live.entities is None and client.discovery.basic_search("kafka_topic", None, "spare", False).entities
    events = client.entity.get_audit_events(spare_guid, None, None, 10)
    assert [(ev["action"], ev["user"]) for ev in events] == [("ENTITY_DELETE", "alice"), ("ENTITY_CREATE", "alice")]
    assert events[0]["details"].startswith("Deleted: {")

    assert "ATLAS-404-00-005" in error_of(client.entity.get_entity_by_guid, "no-such-guid")
    assert "ATLAS-404-00-009" in error_of(client.entity.get_entity_header_by_attribute, "kafka_topic",
                                          {"qualifiedName": "nowhere@primary"})


def test_classifications_lineage_relationships_and_redeploys(running):
    client, _ = running
    client.typedef.create_atlas_typedefs({"classificationDefs": [{"name": "Confidential", "attributeDefs": [
        {"name": "owner", "typeName": "string", "isOptional": True, "cardinality": "SINGLE"}]}]})
    predictions = guid_of(client, "kafka_topic", "mlstream.predictions@primary")
    client.entity.add_classifications_by_guid(predictions, [AtlasClassification({"typeName": "Confidential",
                                                                                 "attributes": {"owner": "risk"}})])
    assert [(c.typeName, c.attributes) for c in client.entity.get_classifications(predictions).list] == \
        [("Confidential", {"owner": "risk"})]
    assert "ATLAS-400-00-01B" in error_of(client.entity.add_classifications_by_guid, predictions,
                                          [AtlasClassification({"typeName": "Confidential"})])
    tagged = client.discovery.dsl_search("DataSet isa Confidential")
    assert [h.guid for h in tagged.entities] == [predictions]
    assert client.entity.get_entity_header_by_guid(predictions).classificationNames == ["Confidential"]
    client.entity.delete_classification(predictions, "Confidential")
    assert client.entity.get_classifications(predictions).list == []
    client.entity.add_classifications_by_type("kafka_topic", {"qualifiedName": "mlstream.predictions@primary"},
                                              [AtlasClassification({"typeName": "Confidential"})])
    assert client.entity.get_entity_header_by_guid(predictions).classificationNames == ["Confidential"]

    source = guid_of(client, "mlstream_source_dataset", "river/phishing@primary")
    down = client.lineage.get_lineage_info(source, "OUTPUT", 5)
    names = {g: h.attributes["qualifiedName"] for g, h in down.guidEntityMap.items()}
    assert "mlstream.predictions@primary" in names.values() and build_crn("churn", "2") in names.values()
    edge = next(r for r in down.relations if names[r.toEntityId] == "mlstream.predictions@primary")
    relationship = client.call_api(RelationshipClient.GET_RELATIONSHIP_BY_GUID.format_path_with_params(
        edge.relationshipId), dict, {"extendedInfo": True})
    assert relationship["relationship"]["typeName"] == "process_dataset_outputs"
    assert relationship["relationship"]["end2"]["guid"] == predictions and len(relationship["referredEntities"]) == 2
    assert "ATLAS-404-00-00C" in error_of(client.call_api, RelationshipClient.GET_RELATIONSHIP_BY_GUID
                                          .format_path_with_params("no-such-guid"), dict)
    # the client's own parser of AtlasRelationshipWithExtInfo fails on any answer (apache-atlas 0.0.16):
    with pytest.raises(AtlasServiceException, match="failed with status 200"):
        client.relationship.get_relationship_by_guid(edge.relationshipId)

    # the redeploy moved the deployment from build 1 to build 2: the old link is DELETED, the new one ACTIVE
    deployment = client.entity.get_entity_by_attribute(
        "ml_model_deployment", {"qualifiedName": "crn:mlstream:ml:local:model/churn/deployment/mlstream-scorer"}).entity
    assert deployment.relationshipAttributes["build"]["uniqueAttributes"]["qualifiedName"] == build_crn("churn", "2")
    build1 = client.entity.get_entity_by_attribute("ml_model_build", {"qualifiedName": build_crn("churn", "1")}).entity
    assert build1.relationshipAttributes["deployments"] == []
    upstream = client.lineage.get_lineage_info(deployment.guid, "INPUT", 1)
    assert build_crn("churn", "1") not in {h.attributes["qualifiedName"] for h in upstream.guidEntityMap.values()}


def test_typedefs_metrics_glossary_and_what_is_not_served(running):
    client, service = running
    headers = client.typedef.get_all_typedef_headers(SearchFilter())
    by_name = {h["name"]: h for h in headers}
    assert by_name["kafka_topic"]["category"] == "ENTITY" and by_name["dataset_process_inputs"]["category"] == \
        "RELATIONSHIP"
    assert client.typedef.get_entitydef_by_guid(by_name["kafka_topic"]["guid"]).name == "kafka_topic"
    entities_only = SearchFilter()
    entities_only.params = {"type": "entity"}
    entity_only = client.typedef.get_all_typedefs(entities_only)
    assert entity_only.entityDefs and not entity_only.relationshipDefs
    client.typedef.create_atlas_typedefs({"entityDefs": [{"name": "tour_thing", "superTypes": ["DataSet"],
                                                          "attributeDefs": []}]})
    client.typedef.update_atlas_typedefs({"entityDefs": [{"name": "tour_thing", "superTypes": ["DataSet"],
                                                          "description": "changed", "attributeDefs": []}]})
    assert client.typedef.get_entitydef_by_name("tour_thing").description == "changed"
    assert "ATLAS-404-00-001" in error_of(client.typedef.get_entitydef_by_name, "no_such_type")

    metrics = client.admin.get_metrics()
    assert metrics.entity["entityActive"]["kafka_topic"] >= 3
    assert metrics.entity["entityActive-typeAndSubTypes"]["Process"] >= 4 and metrics.general["entityCount"] >= 10

    assert client.glossary.get_all_glossaries() == []
    glossary = client.glossary.create_glossary(AtlasGlossary({"name": "ml", "shortDescription": "ML terms"}))
    assert "ATLAS-409-00-007" in error_of(client.glossary.create_glossary, AtlasGlossary({"name": "ml"}))
    term = client.glossary.create_glossary_term(AtlasGlossaryTerm({
        "name": "prediction", "anchor": AtlasGlossaryHeader({"glossaryGuid": glossary.guid})}))
    assert term.qualifiedName == "prediction@ml"
    assert "ATLAS-400-00-072" in error_of(client.glossary.create_glossary_term, AtlasGlossaryTerm({"name": "x"}))
    predictions = guid_of(client, "kafka_topic", "mlstream.predictions@primary")
    client.glossary.assign_term_to_entities(term.guid, [AtlasRelatedObjectId({"guid": predictions})])
    assert [x["guid"] for x in client.glossary.get_entities_assigned_with_term(term.guid, "ASC", -1, 0)] == \
        [predictions]
    assert client.entity.get_entity_header_by_guid(predictions).meaningNames == ["prediction"]
    assert [h.guid for h in client.discovery.faceted_search({"termName": "prediction@ml"}).entities] == [predictions]
    assert [g["name"] for g in client.glossary.get_all_glossaries()] == ["ml"]
    assert [t["name"] for t in client.glossary.get_glossary_terms(glossary.guid)] == ["prediction"]
    assert "ATLAS-400-00-029" in error_of(client.glossary.delete_glossary_term_by_guid, term.guid)  # still assigned
    client.glossary.disassociate_term_from_entities(term.guid, [AtlasRelatedObjectId({"guid": predictions})])
    client.glossary.delete_glossary_term_by_guid(term.guid)
    assert client.glossary.get_glossary_terms(glossary.guid) == []

    not_served = error_of(client.discovery.get_saved_searches, "alice")
    assert "status 501" in not_served and "ATLAS-501-00-001" in not_served
    answer = requests.patch(f"{service.url}/api/atlas/v2/entity/guid/{predictions}", timeout=10)
    assert answer.status_code == 405 and answer.json()["errorCode"] == "ATLAS-405-00-001"


def test_the_client_tour_runs_without_an_error(running, capsys):
    client, service = running
    assert atlas_client_tour.main(["--url", service.url]) == 0
    printed = capsys.readouterr().out
    assert "tour done: every call answered without an error" in printed
    for call in ("basic_search", "dsl_search", "get_entities_by_guids", "get_entity_header_by_guid",
                 "add/get_classifications", "partial update", "delete_entity_by_guid (soft)", "get_lineage_info"):
        assert call in printed
