"""The typedef loader: Atlas's files and patches give the types Atlas has, and bad typedefs fail."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from mlstream.lineage.typesystem import DEFAULT_TYPEDEFS_DIR, TypeDefError, TypeSystem


@pytest.fixture(scope="module")
def types() -> TypeSystem:
    return TypeSystem.load()


def test_every_file_listed_in_source_md_is_in_the_repo() -> None:
    listed = re.findall(r"^\| `([^`]+\.json)` \|", (DEFAULT_TYPEDEFS_DIR / "SOURCE.md").read_text(), re.M)
    assert len(listed) == 10 + 29  # model files + patch files
    assert [name for name in listed if not (DEFAULT_TYPEDEFS_DIR / name).is_file()] == []


def test_patches_add_attributes_in_version_order(types: TypeSystem) -> None:
    kafka = types.attribute_defs("kafka_topic")
    # 006 (1.0 -> 1.1) and, after the service type and search weight patches, 018 (1.7 -> 1.8).
    assert kafka["partitionCount"]["typeName"] == "int"
    assert kafka["replicationFactor"]["typeName"] == "int"
    assert types.entity_defs["kafka_topic"]["typeVersion"] == "1.8"
    assert kafka["topic"]["searchWeight"] == 10  # UPDATE_ATTRIBUTE_METADATA
    assert "replicatedFrom" in types.attribute_defs("Referenceable")
    assert types.entity_defs["Referenceable"]["serviceType"] == "atlas_core"
    assert {"TYPEDEF_PATCH_1000_041", "TYPEDEF_PATCH_1000_018_001"} <= set(types.applied_patches)


def test_patches_for_types_not_loaded_or_older_versions_are_skipped(types: TypeSystem) -> None:
    skipped = dict(types.skipped_patches)
    assert "not loaded" in skipped["TYPEDEF_PATCH_1000_019_001"]        # kafka_producer_lineage
    assert "patch applies to 1.0" in skipped["TYPEDEF_PATCH_1000_033"]  # hive_column is already 1.3


def test_inherited_attributes_and_relationship_ends(types: TypeSystem) -> None:
    assert types.supertypes("mlstream_stream_process") == ["Process", "Asset", "Referenceable"]
    required = {n for n, a in types.attribute_defs("mlstream_stream_process").items() if not a.get("isOptional", True)}
    assert required == {"qualifiedName", "name", "applicationId", "modelName", "modelVersion"}
    ends = types.relationship_ends("kafka_topic")
    assert [e.relationship for e in ends["avroSchema"]] == ["kafka_topic_avroSchema"]
    assert [e.relationship for e in ends["inputToProcesses"]] == ["dataset_process_inputs"]
    assert "avroSchema" not in types.attribute_defs("kafka_topic")


def _typedef_dir(tmp_path: Path, models: dict[str, dict], patches: dict[str, dict]) -> Path:
    for name, content in models.items():
        (tmp_path / name).write_text(json.dumps(content))
    for name, content in patches.items():
        (tmp_path / "patches" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "patches" / name).write_text(json.dumps(content))
    return tmp_path


def _patch(patch_id: str, action: str, type_name: str, apply_to: str, update_to: str, **fields) -> dict:
    return {"id": patch_id, "action": action, "typeName": type_name, "applyToVersion": apply_to,
            "updateToVersion": update_to, **fields}


def test_patch_actions(tmp_path: Path) -> None:
    base = json.loads((DEFAULT_TYPEDEFS_DIR / "0010-base_model.json").read_text())
    model = {
        "entityDefs": [
            {"name": "thing", "superTypes": ["DataSet"], "typeVersion": "1.0",
             "attributeDefs": [{"name": "old", "typeName": "string", "isOptional": True},
                               {"name": "parts", "typeName": "array<part>", "isOptional": True}]},
            {"name": "part", "superTypes": ["Referenceable"], "typeVersion": "1.0"},
        ],
        "relationshipDefs": [
            {"name": "thing_parts", "typeVersion": "1.0", "relationshipCategory": "AGGREGATION",
             "endDef1": {"type": "thing", "name": "parts", "cardinality": "SET", "isLegacyAttribute": True},
             "endDef2": {"type": "part", "name": "thing", "cardinality": "SINGLE"}},
        ],
    }
    patches = {"1000-Test/001.json": {"patches": [
        _patch("p1", "ADD_ATTRIBUTE", "thing", "1.0", "1.1",
               attributeDefs=[{"name": "size", "typeName": "int", "isOptional": False}]),
        _patch("p2", "ADD_ATTRIBUTE", "thing", "1.0", "1.1",  # thing is 1.1 now: skipped
               attributeDefs=[{"name": "never", "typeName": "int"}]),
        _patch("p3", "UPDATE_TYPEDEF_OPTIONS", "thing", "1.1", "1.2", typeDefOptions={"x": "y"}),
        _patch("p4", "ADD_SUPER_TYPES", "part", "1.0", "1.1", superTypes=["Asset"]),
        _patch("p5", "REMOVE_LEGACY_REF_ATTRIBUTES", "thing_parts", "1.0", "1.1",
               params={"relationshipLabel": "__thing.parts", "relationshipCategory": "COMPOSITION"}),
    ]}}
    types = TypeSystem.load(_typedef_dir(tmp_path, {"0010-base_model.json": base, "1000-test.json": model}, patches))
    thing = types.entity_defs["thing"]
    assert types.applied_patches == ["p1", "p3", "p4", "p5"]
    assert [p for p, _ in types.skipped_patches] == ["p2"]
    assert [a["name"] for a in thing["attributeDefs"]] == ["old", "size"]  # "parts" removed by p5
    assert thing["options"] == {"x": "y"} and thing["typeVersion"] == "1.2"
    assert types.supertypes("part") == ["Referenceable", "Asset"]
    assert types.relationship_defs["thing_parts"]["relationshipCategory"] == "COMPOSITION"
    assert "parts" in types.relationship_ends("thing")


def test_unsupported_patch_action_is_an_error(tmp_path: Path) -> None:
    shutil.copy(DEFAULT_TYPEDEFS_DIR / "0010-base_model.json", tmp_path)
    patches = {"0000-Area0/001.json": {"patches": [_patch("p", "RENAME_TYPE", "DataSet", "1.1", "1.2")]}}
    with pytest.raises(TypeDefError, match="unsupported action 'RENAME_TYPE'"):
        TypeSystem.load(_typedef_dir(tmp_path, {}, patches))


def test_undefined_supertype_and_duplicate_type_are_errors(tmp_path: Path) -> None:
    shutil.copy(DEFAULT_TYPEDEFS_DIR / "0010-base_model.json", tmp_path)
    (tmp_path / "ours.json").write_text(json.dumps({"entityDefs": [{"name": "x", "superTypes": ["Nope"]}]}))
    with pytest.raises(TypeDefError, match="supertype 'Nope'"):
        TypeSystem.load(tmp_path)
    (tmp_path / "ours.json").write_text(json.dumps({"entityDefs": [{"name": "DataSet"}]}))
    with pytest.raises(TypeDefError, match="'DataSet' is already defined"):
        TypeSystem.load(tmp_path)
