"""The folder config store and the Avro encoding of configs (no registry needed)."""

from __future__ import annotations

import json
import threading

import pytest

from mlstream.config_store import ConfigNotFound, ConfigStoreError, FolderConfigStore, config_schema, config_text
from mlstream.errors import UserError


def test_rollback_to_an_old_text_makes_a_new_version(tmp_path):
    store = FolderConfigStore(tmp_path)
    assert store.put("m", "a: 1\n") == 1
    assert store.put("m", "a: 2\n") == 2
    assert store.put("m", "a: 1\n") == 3
    assert [(v.version, v.text) for v in store.history("m")] == [(1, "a: 1\n"), (2, "a: 2\n"), (3, "a: 1\n")]


def test_text_comes_back_byte_for_byte(tmp_path):
    text = "# comment\r\nname: 'ünïcode'\r\n\tkey:   x  \n\n"
    store = FolderConfigStore(tmp_path)
    assert store.get("x", store.put("x", text)).text == text


def test_missing_config_and_version_are_user_errors(tmp_path):
    store = FolderConfigStore(tmp_path)
    with pytest.raises(ConfigNotFound, match="mlstream config put nothing"):
        store.get("nothing")
    store.put("some", "a: 1\n")
    with pytest.raises(ConfigNotFound, match="no version 7"):
        store.get("some", 7)
    assert store.history("nothing") == []


@pytest.mark.parametrize("name", ["", "../etc", "a/b", ".hidden", "x y"])
def test_unsafe_names_are_refused(tmp_path, name):
    with pytest.raises(UserError, match="config name"):
        FolderConfigStore(tmp_path).put(name, "a: 1\n")


def test_concurrent_puts_never_share_a_version(tmp_path):
    store = FolderConfigStore(tmp_path)
    threads = [threading.Thread(target=store.put, args=("c", f"n: {i}\n")) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    history = store.history("c")
    assert [v.version for v in history] == list(range(1, 9))
    assert sorted(v.text for v in history) == sorted(f"n: {i}\n" for i in range(8))


def test_config_schema_is_a_fieldless_record_holding_the_text():
    schema = json.loads(config_schema("lineage", "owner: me\n", previous=4))
    assert (schema["type"], schema["name"], schema["namespace"], schema["fields"]) == (
        "record", "Config", "mlstream.config", [])
    assert schema["doc"] == "owner: me\n" and schema["mlstream.config.previous"] == 4
    assert config_text(json.dumps(schema), "here") == "owner: me\n"


def test_a_schema_whose_text_was_altered_is_refused():
    schema = json.loads(config_schema("lineage", "owner: me\n", previous=0))
    schema["doc"] = "owner: someone else\n"
    with pytest.raises(ConfigStoreError, match="SHA-256"):
        config_text(json.dumps(schema), "subject x version 1")
    with pytest.raises(ConfigStoreError, match="not an mlstream config"):
        config_text('{"type": "record", "name": "Other", "fields": []}', "subject y version 1")
