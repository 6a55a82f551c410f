"""SchemaRegistryConfigStore on the real registry: versions, identical puts, rollbacks, compatibility."""

from __future__ import annotations

import dataclasses
import json

import pytest
from confluent_kafka.schema_registry import Schema

from mlstream.config_store import ConfigNotFound, ConfigStoreError, SchemaRegistryConfigStore, config_schema
from mlstream.kafka.clients import registry_client
from mlstream.settings import Settings

pytestmark = pytest.mark.integration


@pytest.fixture
def store(isolated: Settings) -> SchemaRegistryConfigStore:
    return SchemaRegistryConfigStore(registry_client(isolated), isolated.topics.prefix)


def test_put_get_history_and_identical_put(store):
    assert store.history("lineage") == []
    assert store.put("lineage", "owner: a\n") == 1
    assert store.put("lineage", "owner: a\n") == 1  # identical: the existing version
    assert store.put("lineage", "owner: b\n") == 2
    assert store.get("lineage").text == "owner: b\n"
    assert store.get("lineage", 1).text == "owner: a\n"
    assert [(v.version, v.text) for v in store.history("lineage")] == [(1, "owner: a\n"), (2, "owner: b\n")]


def test_a_change_in_the_text_alone_is_a_new_version(store):
    # Apicurio ignores doc when it looks for an existing schema; the hash property makes the difference.
    texts = ["a: 1\n", "a: 2\n", "a: 3\n"]
    assert [store.put("doc-only", t) for t in texts] == [1, 2, 3]
    assert [v.text for v in store.history("doc-only")] == texts


def test_rollback_puts_the_old_text_as_a_new_version(store):
    store.put("rb", "v: 1\n")
    store.put("rb", "v: 2\n")
    assert store.put("rb", store.get("rb", 1).text) == 3
    assert store.get("rb").text == "v: 1\n"


def test_stricter_compatibility_never_blocks_a_change(store):
    store.put("strict", "a: 1\n")
    store.client.set_compatibility(store.subject("strict"), "FULL_TRANSITIVE")
    assert store.put("strict", "completely: [different, yaml]\n") == 2


def test_the_registry_keeps_doc_and_custom_properties(store):
    text = "# lineage\nmodels:\n  churn: {owner: 'ünï'}\n"
    store.put("kept", text)
    stored = json.loads(store.client.get_version(store.subject("kept"), 1).schema.schema_str)
    assert stored == json.loads(config_schema("kept", text, previous=0))


def test_missing_config_and_a_foreign_subject(store):
    with pytest.raises(ConfigNotFound, match="has no version in the registry"):
        store.get("absent")
    store.put("there", "a: 1\n")
    with pytest.raises(ConfigNotFound, match="version 5"):
        store.get("there", 5)
    store.client.register_schema(store.subject("foreign"),
                                 Schema('{"type": "record", "name": "Other", "fields": []}', "AVRO"))
    with pytest.raises(ConfigStoreError, match="not an mlstream config"):
        store.get("foreign")


def test_registry_down_is_a_clear_error(isolated):
    down = dataclasses.replace(isolated, schema_registry_url="http://127.0.0.1:9")
    store = SchemaRegistryConfigStore(registry_client(down), "nowhere.")
    with pytest.raises(ConfigStoreError, match="not reachable"):
        store.put("x", "a: 1\n")
