"""A tour of Atlas REST v2 with only the official ``apache-atlas`` client, against ``mlstream lineage serve``.

Run it against the embedded lineage service (or any Atlas that has the standard types):

    mlstream lineage serve &                         # MLSTREAM_LINEAGE_PORT, 21000 by default
    python -m tools.examples.atlas_client_tour       # or: --url http://host:port --user admin:admin

It creates its own small graph (two Kafka topics and a Process between them, named with a
run id so that it can run again), then does what an Atlas user does: typedefs, basic search
(with attribute filters), a DSL query, full text and quick search, bulk get by guids and by
unique attributes, entity headers, classifications, partial updates (one attribute by guid, a
whole entity matched by qualifiedName), lineage, a relationship by guid, a glossary term on an
entity, audit events, a soft delete and the metrics. Every step prints one line; any error
stops it with the call that failed.

Nothing here is mlstream code: only ``apache_atlas`` (PyPI ``apache-atlas``).
"""

from __future__ import annotations

import argparse
import os
import sys
import uuid

from apache_atlas.client.base_client import AtlasClient
from apache_atlas.client.relationship import RelationshipClient
from apache_atlas.exceptions import AtlasServiceException
from apache_atlas.model.discovery import SearchParameters
from apache_atlas.model.glossary import AtlasGlossary, AtlasGlossaryHeader, AtlasGlossaryTerm
from apache_atlas.model.instance import (AtlasClassification, AtlasEntitiesWithExtInfo, AtlasEntity,
                                         AtlasEntityWithExtInfo, AtlasObjectId, AtlasRelatedObjectId)
from apache_atlas.model.misc import SearchFilter

CLASSIFICATION = "tour_PII"


def step(title: str, detail: object) -> None:
    print(f"{title:34} {detail}")


def topic(name: str) -> AtlasEntity:
    return AtlasEntity({"typeName": "kafka_topic", "attributes": {
        "qualifiedName": f"{name}@primary", "name": name, "topic": name, "uri": "localhost:9092",
        "description": f"the tour's {name.rsplit('.', 1)[-1]} topic"}})


def tour(client: AtlasClient, run: str) -> None:
    types = client.typedef.get_all_typedef_headers(SearchFilter())
    step("typedef headers", f"{len(types)} types, e.g. {sorted(t['name'] for t in types)[:3]}")
    if not any(t["name"] == CLASSIFICATION for t in types):
        client.typedef.create_atlas_typedefs({"classificationDefs": [
            {"name": CLASSIFICATION, "description": "personal data", "superTypes": [], "attributeDefs": []}]})
    step("classification type", client.typedef.get_classificationdef_by_name(CLASSIFICATION).name)

    records, scored = topic(f"tour.{run}.records"), topic(f"tour.{run}.scored")
    process = AtlasEntity({"typeName": "Process", "attributes": {
        "qualifiedName": f"tour.{run}.scorer@primary", "name": f"tour {run} scorer",
        "description": "scores the tour's records"},
        "relationshipAttributes": {"inputs": [AtlasObjectId({"guid": records.guid, "typeName": "kafka_topic"})],
                                   "outputs": [AtlasObjectId({"guid": scored.guid, "typeName": "kafka_topic"})]}})
    created = client.entity.create_entities(AtlasEntitiesWithExtInfo({"entities": [records, scored, process]}))
    guid = {entity.guid: created.guidAssignments[entity.guid] for entity in (records, scored, process)}
    records_guid, scored_guid, process_guid = guid[records.guid], guid[scored.guid], guid[process.guid]
    step("create_entities", f"{len(created.mutatedEntities['CREATE'])} created")

    found = client.discovery.basic_search("kafka_topic", None, f"tour.{run}", True)
    step("basic_search", [h.attributes["qualifiedName"] for h in found.entities])
    filtered = client.discovery.faceted_search(SearchParameters({
        "typeName": "DataSet", "excludeDeletedEntities": True, "limit": 10,
        "entityFilters": {"condition": "AND", "criterion": [
            {"attributeName": "qualifiedName", "operator": "startsWith", "attributeValue": f"tour.{run}."},
            {"attributeName": "name", "operator": "endsWith", "attributeValue": "records"}]}}))
    step("faceted_search (filters)", [h.attributes["qualifiedName"] for h in filtered.entities])
    dsl = client.discovery.dsl_search(f"kafka_topic where name = 'tour.{run}.scored'")
    step("dsl_search", [h.guid == scored_guid for h in dsl.entities])
    text = client.discovery.full_text_search(f"tour {run} scorer")
    step("full_text_search", [r["entity"]["attributes"]["qualifiedName"] for r in text.fullTextResult])
    quick = client.discovery.quick_search(f"tour.{run}", "kafka_topic", True)
    # (the client's AtlasAggregationEntry keeps each count under "name", and no type name)
    step("quick_search", f"{quick.searchResults.approximateCount} found, "
                         f"{len(quick.aggregationMetrics['__typeName'])} type(s) in aggregationMetrics")
    prefix = client.discovery.attribute_search("kafka_topic", "name", f"tour.{run}.rec", 10, 0)
    step("attribute_search", [h.displayText for h in prefix.entities])

    bulk = client.entity.get_entities_by_guids([records_guid, scored_guid])
    step("get_entities_by_guids", [e.attributes["name"] for e in bulk.entities])
    by_name = client.entity.get_entities_by_attribute("kafka_topic", [{"qualifiedName": f"tour.{run}.records@primary"},
                                                                      {"qualifiedName": f"tour.{run}.scored@primary"}])
    step("get_entities_by_attribute", [e.guid for e in by_name.entities] == [records_guid, scored_guid])
    header = client.entity.get_entity_header_by_guid(process_guid)
    step("get_entity_header_by_guid", f"{header.typeName} {header.displayText} {header.status}")
    header = client.entity.get_entity_header_by_attribute("kafka_topic",
                                                          {"qualifiedName": f"tour.{run}.scored@primary"})
    step("get_entity_header_by_attribute", header.guid == scored_guid)

    client.entity.add_classifications_by_guid(records_guid, [AtlasClassification({"typeName": CLASSIFICATION})])
    tagged = client.entity.get_classifications(records_guid)
    step("add/get_classifications", [c.typeName for c in tagged.list])
    step("basic_search by classification", [h.displayText for h in
                                            client.discovery.basic_search(None, CLASSIFICATION, None, True).entities
                                            if h.guid == records_guid])
    client.entity.delete_classification(records_guid, CLASSIFICATION)
    step("delete_classification", client.entity.get_classifications(records_guid).list)

    client.entity.partial_update_entity_by_guid(scored_guid, 3, "partitionCount")
    scored.attributes["description"] = "scored records, one per input record"
    client.entity.update_entity(AtlasEntityWithExtInfo({"entity": scored}))  # matched by qualifiedName
    scored_now = client.entity.get_entity_by_guid(scored_guid).entity
    step("partial update, update", f"partitionCount={scored_now.attributes['partitionCount']}, "
                                   f"description={scored_now.attributes['description']!r}, "
                                   f"version {scored_now.version}")

    lineage = client.lineage.get_lineage_info(scored_guid, "INPUT", 3)
    names = {g: h.attributes["qualifiedName"] for g, h in lineage.guidEntityMap.items()}
    step("get_lineage_info (INPUT)", " ; ".join(f"{names[r.fromEntityId]} -> {names[r.toEntityId]}"
                                                for r in lineage.relations))
    # RelationshipClient.get_relationship_by_guid cannot parse any answer in apache-atlas 0.0.16
    # (AtlasRelationshipWithExtInfo.type_coerce_attrs calls super(AtlasBase, ...)); the same API
    # of the same client, read as a plain dict:
    relationship = client.call_api(RelationshipClient.GET_RELATIONSHIP_BY_GUID.format_path_with_params(
        lineage.relations[0].relationshipId), dict)["relationship"]
    step("relationship by guid", f"{relationship['typeName']} {relationship['status']}")

    glossary = client.glossary.create_glossary(AtlasGlossary({"name": f"tour-{run}"}))
    term = client.glossary.create_glossary_term(AtlasGlossaryTerm({
        "name": "prediction", "shortDescription": "a model's score for one record",
        "anchor": AtlasGlossaryHeader({"glossaryGuid": glossary.guid})}))
    client.glossary.assign_term_to_entities(term.guid, [AtlasRelatedObjectId({"guid": scored_guid})])
    step("glossary term on an entity", f"{term.qualifiedName}: "
                                       f"{client.entity.get_entity_header_by_guid(scored_guid).meaningNames}")

    events = client.entity.get_audit_events(scored_guid, None, None, 10)
    step("get_audit_events", [event["action"] for event in events])

    deleted = client.entity.delete_entity_by_guid(process_guid)
    step("delete_entity_by_guid (soft)", [h.status for h in deleted.mutatedEntities["DELETE"]])
    step("get deleted entity", client.entity.get_entity_by_guid(process_guid).entity.status)
    still = client.lineage.get_lineage_info(scored_guid, "INPUT", 3)
    step("lineage keeps the deleted process", still.guidEntityMap[process_guid].status)
    active = client.discovery.basic_search("Process", None, f"tour {run}", True)
    step("search excludes deleted", active.entities or [])

    metrics = client.admin.get_metrics()
    step("admin.get_metrics", f"{metrics.general['entityCount']} entities; kafka_topic active "
                              f"{metrics.entity['entityActive'].get('kafka_topic')}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=f"http://127.0.0.1:{os.environ.get('MLSTREAM_LINEAGE_PORT', '21000')}",
                        help="Atlas base URL (default: the embedded lineage service on MLSTREAM_LINEAGE_PORT)")
    parser.add_argument("--user", default="admin:admin", help="user:password (default: %(default)s)")
    args = parser.parse_args(argv)
    user, _, password = args.user.partition(":")
    try:
        tour(AtlasClient(args.url, (user, password)), uuid.uuid4().hex[:6])
    except AtlasServiceException as err:
        print(f"failed: {err}", file=sys.stderr)
        return 1
    print("tour done: every call answered without an error")
    return 0


if __name__ == "__main__":
    sys.exit(main())
