"""Decoding with each value's writer schema: schema evolution the registry accepts keeps decoding."""

import json

import pytest
from confluent_kafka.schema_registry import Schema
from confluent_kafka.schema_registry._sync.mock_schema_registry_client import MockSchemaRegistryClient

from mlstream.kafka.serde import TopicCodec, UndecodableValue, schema_text, value_subject

TOPIC = "t.records"


class CountingRegistry(MockSchemaRegistryClient):
    """confluent-kafka's in-memory registry client, counting the schema look-ups by id."""

    def __init__(self):
        super().__init__({"url": "mock://"})
        self.lookups = 0

    def get_schema(self, schema_id, *args, **kwargs):
        self.lookups += 1
        return super().get_schema(schema_id, *args, **kwargs)


def record_v3_without_source() -> str:
    schema = json.loads(schema_text("record"))
    schema["fields"] = [f for f in schema["fields"] if f["name"] != "source"]
    return json.dumps(schema)


@pytest.fixture
def registry():
    client = CountingRegistry()
    # stripped as the serializer strips it: the in-memory registry compares schema texts exactly
    client.register_schema(value_subject(TOPIC), Schema(schema_text("record").strip(), "AVRO"))
    return client


def test_a_version_that_drops_a_field_decodes_with_its_own_schema(registry):
    """Issue 14 item 8: decoding with the project's reader schema failed (``No default value for field source``)."""
    registry.register_schema(value_subject(TOPIC), Schema(record_v3_without_source(), "AVRO"))
    v3 = TopicCodec.for_schema(registry, TOPIC, record_v3_without_source())
    data = v3.encode({"id": "r1", "event_time": 5, "features": {"x": 1.5}})
    decoded = TopicCodec.for_topic(registry, TOPIC, "record").decode(data)
    assert decoded["id"] == "r1" and decoded["features"] == {"x": 1.5} and "source" not in decoded


def test_each_writer_schema_is_fetched_once(registry):
    codec = TopicCodec.for_topic(registry, TOPIC, "record")
    data = codec.encode({"id": "r1", "source": "s", "event_time": 5, "features": {}})
    before = registry.lookups
    for _ in range(3):
        codec.decode(data)
    assert registry.lookups - before == 1


def test_a_decoder_without_a_schema_reads_any_registered_writer(registry):
    other = json.dumps({"type": "record", "name": "Customer", "fields": [
        {"name": "customer_id", "type": "string"},
        {"name": "plan", "type": {"type": "enum", "name": "Plan", "symbols": ["basic", "gold"]}},
        {"name": "address", "type": {"type": "record", "name": "Address", "fields": [
            {"name": "city", "type": ["null", "string"], "default": None}]}}]})
    registry.register_schema(value_subject("t.customers"), Schema(other, "AVRO"))
    data = TopicCodec.for_schema(registry, "t.customers", other).encode(
        {"customer_id": "c1", "plan": "gold", "address": {"city": None}})
    decoder = TopicCodec.decoder(registry, "t.customers")
    assert decoder.decode(data) == {"customer_id": "c1", "plan": "gold", "address": {"city": None}}
    decoder.warm_up()  # fetches the subject's latest writer schema
    with pytest.raises(TypeError, match="only decodes"):
        decoder.encode({})


def test_undecodable_values_say_why(registry):
    codec = TopicCodec.for_topic(registry, TOPIC, "record")
    good = codec.encode({"id": "r1", "source": "s", "event_time": 5, "features": {}})
    cases = {
        b"plain text": UndecodableValue.NOT_CONFLUENT_FRAMED,
        b"\x00\x00\x00\x03\xe7" + good[5:]: UndecodableValue.UNKNOWN_SCHEMA_ID,
        good[:5] + b"\xff\xff\xff": UndecodableValue.DECODE_FAILED,
        good + b"\x00": UndecodableValue.DECODE_FAILED,  # a body longer than its schema writes
    }
    for data, kind in cases.items():
        with pytest.raises(UndecodableValue) as caught:
            codec.decode(data)
        assert caught.value.kind == kind, data
