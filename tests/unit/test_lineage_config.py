"""Lineage YAML: CML's file unchanged, mlstream's keys, errors by line and key; its entities fit Atlas's types."""

from __future__ import annotations

import doctest
import json
from types import SimpleNamespace

import pytest

from mlstream.lineage import config as lineage_config
from mlstream.lineage import entities as e
from mlstream.lineage.config import LineageConfigError, load_lineage_yaml
from mlstream.lineage.model_lineage import model_build_notification
from mlstream.lineage.typesystem import TypeSystem
from mlstream import yaml_schema

CML_LINEAGE = '''"Churn Model API Endpoint":
  hive_table_qualified_names: ["default.telco_churn@cm"]
  metadata: {query: "select * from historical_data", training_file: "train.py"}
'''

FULL_LINEAGE = '''phishing:
  owner: alice
  team: fraud
  description: phishing detector
  hive_table_qualified_names: ["default.sites@cm"]
  hive_tables: [raw.urls]
  kafka_topics:
    - {topic: mlstream.records, version: 2}
    - {topic: mlstream.labels, subject: labels-subject}
  s3_paths: ["s3a://lake/phishing/2024/"]
  spark_tables: [features.sites]
  spark_views: [global_temp.recent_sites]
  features: [a, b]
  label: is_phishing
  sampling: {method: down, ratio: 0.5, seed: 3}
  splits: {train: 0.7, validation: 0.15, test: 0.15, seed: 42}
'''

RECORD_SCHEMA = json.dumps({"type": "record", "name": "Record", "namespace": "mlstream.avro", "fields": []})


@pytest.fixture(scope="module")
def types() -> TypeSystem:
    return TypeSystem.load()


@pytest.mark.parametrize("module", [lineage_config, yaml_schema])
def test_doctests(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_cml_lineage_yml_is_accepted_unchanged():
    [(name, model)] = load_lineage_yaml(CML_LINEAGE).items()
    assert name == "Churn Model API Endpoint"
    assert model.hive_table_qualified_names == ("default.telco_churn@cm",)
    assert model.metadata == {"query": "select * from historical_data", "training_file": "train.py"}


def test_every_extension_key_is_read():
    model = load_lineage_yaml(FULL_LINEAGE)["phishing"]
    assert [(t.topic, t.subject, t.version) for t in model.kafka_topics] == [
        ("mlstream.records", "mlstream.records-value", 2), ("mlstream.labels", "labels-subject", None)]
    assert model.sampling == {"method": "down", "ratio": 0.5, "seed": 3}
    assert model.splits["validation"] == 0.15 and model.features == ("a", "b") and model.team == "fraud"


@pytest.mark.parametrize("text, expected", [
    ("m:\n  owner: x\n  fetaures: [a]\n", "<t>:3: m.fetaures: unknown key (allowed:"),
    ("m:\n  kafka_topics:\n    - {topic: t, versoin: 2}\n", "<t>:3: m.kafka_topics[0].versoin: unknown key"),
    ("m:\n  sampling: {method: sideways}\n", "<t>:2: m.sampling.method: 'sideways' is not one of"),
    ("m:\n  hive_table_qualified_names: [telco_churn]\n", "<t>:2: m.hive_table_qualified_names[0]:"),
    ("m:\n  splits: {train: 0.9, test: 0.2}\n", "<t>:2: m.splits: train + validation + test is 1.1"),
    ("m:\n  owner: [a\n", "<t>:3: not valid YAML"),
    ("m: {}\nm: {}\n", "<t>:2: m: duplicate key"),
    ("", "<t>: empty"),
])
def test_errors_name_the_line_and_the_key(text, expected):
    with pytest.raises(LineageConfigError) as raised:
        load_lineage_yaml(text, "<t>")
    assert expected in str(raised.value)


def test_every_problem_is_listed():
    with pytest.raises(LineageConfigError) as raised:
        load_lineage_yaml("a:\n  x: 1\nb:\n  features: oops\n", "<t>")
    assert str(raised.value).splitlines() == [
        "<t>:2: a.x: unknown key (allowed: description, features, hive_table_qualified_names, hive_tables, "
        "kafka_topics, label, metadata, owner, s3_paths, sampling, spark_tables, spark_views, splits, team)",
        "<t>:4: b.features: 'oops' is not of type 'array'"]


def fake_lookup(subject, version):
    return SimpleNamespace(version=version or 5, schema=SimpleNamespace(schema_str=RECORD_SCHEMA))


def test_model_build_lineage_fits_atlas_types(types):
    model = load_lineage_yaml(FULL_LINEAGE)["phishing"]
    note = model_build_notification(model, 3, "primary", bootstrap_servers="localhost:9092",
                                    existing_topics={"mlstream.records", "mlstream.labels"},
                                    schema_lookup=fake_lookup, user="mlstream")
    assert types.validate_notification(note) == []
    entities = [note["entities"]["entities"][0], *note["entities"]["referredEntities"].values()]
    names = {entity["typeName"]: [] for entity in entities}
    for entity in entities:
        names[entity["typeName"]].append(entity["attributes"]["qualifiedName"])
    assert sorted(names["hive_table"]) == ["default.sites@cm", "raw.urls@primary"]
    assert sorted(names["kafka_topic"]) == ["mlstream.labels@primary", "mlstream.records@primary"]
    assert sorted(names["avro_schema"]) == ["labels-subject@v5@primary", "mlstream.records-value@v2@primary"]
    assert names["aws_s3_v2_bucket"] == ["s3a://lake@primary"]
    assert sorted(names["aws_s3_v2_directory"]) == ["s3a://lake/phishing/2024/@primary", "s3a://lake/phishing/@primary"]
    assert sorted(names["spark_table"]) == ["features.sites@primary", "global_temp.recent_sites@primary"]
    assert names["ml_model_build"] == ["crn:mlstream:ml:local:model/phishing/build/3"]
    process = note["entities"]["entities"][0]
    assert process["typeName"] == "ml_model_train_build_process"
    assert len(process["relationshipAttributes"]["inputs"]) == 7
    build = note["entities"]["referredEntities"][process["relationshipAttributes"]["outputs"][0]["guid"]]
    assert build["attributes"]["metadata"]["splits.train"] == "0.7"
    assert build["attributes"]["metadata"]["features"] == "a,b"


def test_a_topic_that_does_not_exist_is_an_error():
    model = load_lineage_yaml("m:\n  kafka_topics: [{topic: nowhere}]\n")["m"]
    with pytest.raises(LineageConfigError, match="'nowhere', which does not exist"):
        model_build_notification(model, 1, "primary", bootstrap_servers="b:9092", existing_topics=set(),
                                 schema_lookup=fake_lookup, user="u")


def test_cml_types_and_datasets_validate(types):
    guids = e.negative_guids()
    build = e.ml_model_build("crn:x/build/1", "x", 1, guid=next(guids), create_time_ms=1)
    table = e.hive_table("Default.Telco_Churn@cm", guid=next(guids))
    assert table["attributes"] == {"qualifiedName": "default.telco_churn@cm", "name": "telco_churn"}
    process = e.ml_train_build_process(build, [table], user="me", guid=next(guids))
    assert types.validate_entities([build, table, process]) == []
