"""Entity builders: Atlas's qualifiedNames, and every entity fits Atlas's types; broken ones do not."""

from __future__ import annotations

import json

import pytest

from mlstream.lineage import entities as e
from mlstream.lineage.hook import entity_create_v2, entity_delete_v2, entity_partial_update_v2
from mlstream.lineage.typesystem import TypeSystem

RECORD_SCHEMA = json.dumps({"type": "record", "name": "Record", "namespace": "mlstream.avro",
                            "fields": [{"name": "x", "type": "double"}]})


@pytest.fixture(scope="module")
def types() -> TypeSystem:
    return TypeSystem.load()


def startup_message(namespace: str = "primary") -> dict:
    """The stream app's start-up lineage: records+labels -> scorer -> predictions, metrics."""
    guids = e.negative_guids()
    schema = e.avro_schema("mlstream.records-value", 1, RECORD_SCHEMA, namespace, guid=next(guids))
    topic = {name: e.kafka_topic(f"mlstream.{name}", namespace, bootstrap_servers="localhost:9092",
                                 partition_count=3, guid=next(guids),
                                 avro_schemas=[schema] if name == "records" else ())
             for name in ("records", "labels", "predictions", "metrics")}
    process = e.stream_process("mlstream-scorer", [topic["records"], topic["labels"]],
                               [topic["predictions"], topic["metrics"]], namespace,
                               model_name="logistic_regression", model_version="1",
                               started_at_ms=1_700_000_000_000, guid=next(guids))
    return entity_create_v2([*topic.values(), schema, process], user="mlstream")


# ----- qualifiedNames and shapes ------------------------------------------------------------

def test_qualified_names_follow_atlas_bridges() -> None:
    assert e.kafka_topic_qualified_name("mlstream.Records", "prod") == "mlstream.records@prod"
    assert e.avro_schema_qualified_name("mlstream.Records-value", 4, "prod") == "mlstream.records-value@v4@prod"
    assert e.stream_process_qualified_name("mlstream-scorer") == "mlstream-scorer@primary"


def test_negative_guids_restart_for_each_message() -> None:
    first, second = e.negative_guids(), e.negative_guids()
    assert [next(first), next(first), next(first)] == ["-1", "-2", "-3"]
    assert next(second) == "-1"


def test_kafka_topic_attributes() -> None:
    topic = e.kafka_topic("Orders", "prod", bootstrap_servers="b1:9092,b2:9092", partition_count=6,
                          replication_factor=3, guid="-7")
    assert topic == {"typeName": "kafka_topic", "guid": "-7", "attributes": {
        "qualifiedName": "orders@prod", "name": "Orders", "topic": "Orders", "uri": "b1:9092,b2:9092",
        "partitionCount": 6, "replicationFactor": 3}}


def test_avro_schema_attributes_and_topic_link() -> None:
    schema = e.avro_schema("orders-value", 2, RECORD_SCHEMA, "prod", guid="-1")
    assert schema["attributes"] == {
        "qualifiedName": "orders-value@v2@prod", "name": "Record(v2)", "type": "RECORD",
        "namespace": "mlstream.avro", "versionId": 2, "avro_notation": RECORD_SCHEMA}
    topic = e.kafka_topic("orders", "prod", bootstrap_servers="b:9092", avro_schemas=[schema], guid="-2")
    assert topic["relationshipAttributes"] == {"avroSchema": [{
        "guid": "-1", "typeName": "avro_schema", "uniqueAttributes": {"qualifiedName": "orders-value@v2@prod"},
        "relationshipType": "kafka_topic_avroSchema"}]}


def test_avro_schema_namespace_from_dotted_name_or_null_namespace() -> None:
    dotted = json.dumps({"type": "record", "name": "a.b.R", "namespace": "ignored", "fields": []})
    plain = json.dumps({"type": "record", "name": "R", "fields": []})
    assert e.avro_schema("s", 1, dotted, guid="-1")["attributes"]["namespace"] == "a.b"
    assert e.avro_schema("s", 1, plain, guid="-1")["attributes"]["namespace"] == ""


def test_avro_schema_rejects_non_record_schemas() -> None:
    with pytest.raises(ValueError, match="record schemas"):
        e.avro_schema("key", 1, '"string"', guid="-1")


def test_stream_process_references_new_and_existing_topics() -> None:
    new = e.kafka_topic("records", bootstrap_servers="b:9092", guid="-1")
    existing = e.object_id("kafka_topic", "predictions@primary")
    process = e.stream_process("app", [new], [existing], model_name="m", model_version=3, guid="-2")
    assert process["attributes"]["modelVersion"] == "3"
    assert process["relationshipAttributes"] == {
        "inputs": [{"guid": "-1", "typeName": "kafka_topic", "uniqueAttributes": {"qualifiedName": "records@primary"},
                    "relationshipType": "dataset_process_inputs"}],
        "outputs": [{"typeName": "kafka_topic", "uniqueAttributes": {"qualifiedName": "predictions@primary"},
                     "relationshipType": "process_dataset_outputs"}],
    }


# ----- everything we build fits Atlas's types ---------------------------------------------

def test_every_built_entity_validates(types: TypeSystem) -> None:
    message = startup_message("prod")
    built = message["entities"]["entities"]
    assert {entity["typeName"] for entity in built} == {"kafka_topic", "avro_schema", "mlstream_stream_process"}
    for entity in built:
        assert types.validate_entity(entity) == []
    assert types.validate_notification(message) == []


def test_update_and_delete_notifications_validate(types: TypeSystem) -> None:
    process_id = e.object_id("mlstream_stream_process", "mlstream-scorer@primary")
    update = entity_partial_update_v2(
        process_id, {"typeName": "mlstream_stream_process", "attributes": {"modelVersion": "2"}}, user="mlstream")
    delete = entity_delete_v2([e.object_id("kafka_topic", "mlstream.metrics@primary")], user="mlstream")
    assert types.validate_notification(update) == []
    assert types.validate_notification(delete) == []


# ----- broken entities give the problems Atlas would have with them ----------------------

def topic() -> dict:
    return e.kafka_topic("records", bootstrap_servers="b:9092", guid="-1")


def process_with(inputs: list) -> dict:
    entity = e.stream_process("app", [], [], model_name="m", model_version="1", guid="-9")
    entity["relationshipAttributes"]["inputs"] = inputs
    return entity


def test_unknown_type(types: TypeSystem) -> None:
    assert types.validate_entity({"typeName": "kafka_topik", "attributes": {}}) == ["kafka_topik[?]: unknown type 'kafka_topik'"]
    assert types.validate_entity({"typeName": "dataset_process_inputs", "attributes": {}}) == [
        "dataset_process_inputs[?]: not an entity type 'dataset_process_inputs'"]


def test_missing_required_attributes_including_inherited(types: TypeSystem) -> None:
    entity = topic()
    del entity["attributes"]["uri"], entity["attributes"]["name"]  # uri: kafka_topic; name: Asset
    assert types.validate_entity(entity) == [
        "kafka_topic[records@primary]: missing required attribute 'name'",
        "kafka_topic[records@primary]: missing required attribute 'uri'",
    ]
    assert types.validate_entity(entity, partial=True) == []


def test_undefined_attributes(types: TypeSystem) -> None:
    entity = topic()
    entity["attributes"]["clusterName"] = "primary"  # KafkaBridge sets it, but kafka_topic has no such attribute
    entity["attributes"]["avroSchema"] = []          # removed by patch 013, now only a relationship end
    assert types.validate_entity(entity) == [
        "kafka_topic[records@primary]: attribute 'clusterName' is not defined by kafka_topic or its supertypes",
        "kafka_topic[records@primary]: attribute 'avroSchema' is not defined by kafka_topic or its supertypes "
        "(it is a relationship end: put it in relationshipAttributes)",
    ]


def test_attribute_values_of_the_wrong_type(types: TypeSystem) -> None:
    entity = topic()
    entity["attributes"].update(partitionCount="3", replicationFactor=2**31, name=None)
    entity["typo"] = True
    assert types.validate_entity(entity) == [
        "kafka_topic[records@primary]: unknown entity field 'typo'",
        "kafka_topic[records@primary].partitionCount: expected an integer (int)",
        "kafka_topic[records@primary].replicationFactor: 2147483648 is out of range for int",
        "kafka_topic[records@primary]: missing required attribute 'name'",
    ]


def test_relationship_attribute_that_is_not_an_end(types: TypeSystem) -> None:
    entity = topic()
    entity["relationshipAttributes"] = {"inputs": []}  # an end of Process, not of a DataSet
    assert types.validate_entity(entity) == [
        "kafka_topic[records@primary]: relationshipAttribute 'inputs' is not a relationship end of "
        "kafka_topic or its supertypes"]


def test_references_with_wrong_shape(types: TypeSystem) -> None:
    entity = process_with([
        e.reference_to(topic(), "process_dataset_outputs"),      # wrong relationship for inputs
        {"typeName": "kafka_topic"},                             # neither guid nor uniqueAttributes
        topic(),                                                 # a whole entity, not a reference
        e.object_id("mlstream_stream_process", "other@primary"),  # not a DataSet
        {"typeName": "kafka_topic", "uniqueAttributes": {"name": "x"}},  # name is not unique
    ])
    assert types.validate_entity(entity) == [
        "mlstream_stream_process[app@primary].inputs[0]: relationshipType 'process_dataset_outputs' does not "
        "have an end 'inputs' here; expected one of ['dataset_process_inputs']",
        "mlstream_stream_process[app@primary].inputs[1]: a reference needs a guid or typeName + uniqueAttributes",
        "mlstream_stream_process[app@primary].inputs[2]: a whole entity is embedded; put it in "
        "entities/referredEntities and reference it by guid or typeName + uniqueAttributes",
        "mlstream_stream_process[app@primary].inputs[3]: references a mlstream_stream_process, expected a DataSet",
        "mlstream_stream_process[app@primary].inputs[4]: 'name' is not a unique attribute of kafka_topic",
    ]
    single = process_with(e.reference_to(topic()))  # inputs is a SET: needs a list
    assert types.validate_entity(single) == [
        "mlstream_stream_process[app@primary].inputs: expected a list of references (SET)"]


def test_negative_guids_must_resolve_within_the_message(types: TypeSystem) -> None:
    message = startup_message()
    built = message["entities"]["entities"]
    metrics = next(x for x in built if x["attributes"]["name"] == "mlstream.metrics")
    built.remove(metrics)
    metrics_guid = metrics["guid"]
    assert types.validate_notification(message) == [
        f"mlstream_stream_process[mlstream-scorer@primary].outputs[1]: guid {metrics_guid} is not an entity "
        "of this message"]


def test_referred_entities_count_and_envelopes_are_pointed_out(types: TypeSystem) -> None:
    message = startup_message()
    *datasets, process = message["entities"]["entities"]
    in_referred = entity_create_v2([process], datasets, user="mlstream")
    assert types.validate_notification(in_referred) == []
    assert types.validate_notification({"version": {"version": "1.0.0"}, "message": message}) == [
        "this is an envelope: pass its 'message' (the notification)"]


def test_delete_needs_unique_attributes(types: TypeSystem) -> None:
    delete = entity_delete_v2([{"guid": "0a1b", "typeName": "kafka_topic"}], user="mlstream")
    assert types.validate_notification(delete) == ["entities[0]: needs typeName and uniqueAttributes"]
