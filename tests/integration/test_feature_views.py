"""A user's CSV through `mlstream produce --csv` and a feature view into `mlstream app`, on the real broker and registry.

The CSV is written here (a typed "customers" table: strings, an enum, a nullable number, a
dotted column, an ISO time column, a yes/no label, and a few malformed rows). Its records are
then evolved under BACKWARD (a version without a non-feature column, one without a feature)
and keep being scored. The project's own records topic gets a version without ``source``
(issue 14 item 8: every such record used to be dead-lettered). Figures are read back from Kafka.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
from collections import Counter

import pytest
from confluent_kafka.schema_registry import Schema

from mlstream.config_store import open_config_store
from mlstream.features.view import DEFAULT_REF, DEFAULT_VIEW_YAML
from mlstream.kafka.clients import registry_client
from mlstream.kafka.dead_letters import FEATURE_VIEW_MISMATCH
from mlstream.kafka.producer import AvroProducer
from mlstream.kafka.reader import read_all
from mlstream.kafka.serde import TopicCodec, schema_text, value_subject
from mlstream.kafka.topics import init, topic_codec
from tests.conftest import isolated_settings
from tests.integration.customers import customers, write_customers_csv
from tools.demo import app_stats, start_app, stop_app, wait_for, wait_for_app

pytestmark = pytest.mark.integration

ROWS = 3000


def write_csv(path, rows: list[dict]) -> dict[int, str]:
    """The rows, with five malformed lines among them; returns line number -> what is wrong with it."""
    broken = {
        101: "cust-x1,only,three",                                          # too few fields
        502: ",Nobody,basic,20.0,3,1,Leeds,12345,2025-01-01T00:00:00+00:00,no",      # no id
        1003: "cust-00007,Again,basic,20.0,3,1,Leeds,12345,2025-01-01T00:00:00+00:00,no",  # the id of an earlier row
        2004: "cust-x4,Typo,basic,twenty,3,1,Leeds,12345,2025-01-01T00:00:00+00:00,no",  # not a number
        2905: "cust-x5,NoLabel,basic,20.0,3,1,Leeds,12345,2025-01-01T00:00:00+00:00,",   # no label
    }
    write_customers_csv(path, rows, broken)
    return broken


def evolved(schema: dict, drop: str) -> dict:
    return {**schema, "fields": [f for f in schema["fields"] if f["name"] != drop]}


@pytest.fixture(scope="module")
def csv_run(services, tmp_path_factory):
    """Produce the CSV, score it with its view, then evolve its schema and score more."""
    tmp = tmp_path_factory.mktemp("csv")
    settings = isolated_settings(services, tmp / "state")
    init(settings, say=lambda _: None)
    path = tmp / "customers.csv"
    rows = customers(ROWS)
    broken = write_csv(path, rows)
    env = os.environ | settings.to_env()
    produced = subprocess.run(
        [sys.executable, "-m", "tools", "produce", "--csv", str(path), "--id-column", "customer_id",
         "--label-column", "churned", "--time-column", "signed_up", "--rate", "1000", "--label-delay", "0.2",
         "--json"],  # paced, so labels come between the records: all at once, every row would be scored untrained
        capture_output=True, text=True, timeout=300, env=env)
    assert produced.returncode == 0, produced.stderr
    summary = json.loads(produced.stdout)

    settings = dataclasses.replace(settings, feature_view="customers")
    registry = registry_client(settings)
    topic = summary["topic"]
    v1 = json.loads(registry.get_version(value_subject(topic), 1).schema.schema_str)
    # v2 drops a column that is no feature, v3 drops a feature too: both BACKWARD-compatible
    v2, v3 = evolved(v1, "name"), evolved(evolved(v1, "name"), "support_calls")
    for schema in (v2, v3):
        registry.register_schema(value_subject(topic), Schema(json.dumps(schema), "AVRO"))
    log_path = settings.state_dir / "app.log"
    app = start_app(settings, log_path)
    try:
        wait_for_app(settings, app, log_path)
        wait_for(lambda: (s := app_stats(settings)) and s["model"]["n_learned"] >= ROWS, 240,
                 f"the app to score and learn the CSV (see {log_path})")
        producer = AvroProducer(settings)
        labels = topic_codec(registry, settings, settings.topics.labels)
        evolved_ids = []
        for version, schema in ((2, v2), (3, v3)):
            codec = TopicCodec.for_schema(registry, topic, json.dumps(schema))
            for i, row in enumerate(customers(50, seed=version)):
                rid = f"v{version}-{i:03d}"
                value = {"customer_id": rid, "plan": row["plan"], "monthly_fee": row["monthly_fee"],
                         "tenure_months": row["tenure_months"], "support_calls": row["support_calls"] if row["support_calls"] != "" else None,
                         "address": {"city": row["address.city"], "zip": row["address.zip"]},
                         "signed_up": int(time.time() * 1000)}
                value = {f["name"]: value[f["name"]] for f in schema["fields"]}
                producer.send(codec, rid.encode(), value)
                producer.send(labels, rid.encode(), {"id": rid, "label": row["churned"] == "yes",
                                                     "event_time": int(time.time() * 1000)})
                evolved_ids.append(rid)
        misfit = TopicCodec.for_schema(registry, topic, json.dumps(v1))
        producer.send(misfit, b"misfit", {**{f["name"]: None for f in v1["fields"]}, "customer_id": "",
                                          "name": "n", "plan": "basic", "monthly_fee": 1.0, "tenure_months": 1,
                                          "address": {"city": "Leeds", "zip": 1}, "signed_up": 0})
        producer.flush()
        stats = wait_for(lambda: (s := app_stats(settings)) and s["model"]["n_learned"] >= ROWS + 100
                         and s["counters"]["dead_letters"] >= 1 and s, 120,
                         f"the evolved records to be scored (see {log_path})")
    finally:
        stop_app(app)
    return {"settings": settings, "rows": rows, "broken": broken, "summary": summary, "stderr": produced.stderr,
            "stats": stats, "topic": topic, "evolved_ids": evolved_ids, "path": path}


def predictions_of(settings):
    codec = topic_codec(registry_client(settings), settings, settings.topics.predictions)
    return [codec.decode(m.value()) for m in read_all(settings, settings.topics.predictions)]


def test_malformed_rows_are_counted_and_named_by_line(csv_run):
    summary, broken, path = csv_run["summary"], csv_run["broken"], csv_run["path"]
    assert summary["rows"] == ROWS + len(broken)
    assert summary["records"] == summary["labels"] == ROWS
    assert summary["malformed"] == len(broken) and summary["malformed_lines"] == sorted(broken)
    for line in broken:
        assert f"{path}:{line}: " in csv_run["stderr"]
    assert f"{path}:101: expected 10 fields, got 3: row skipped" in csv_run["stderr"]
    assert f"{path}:2004: column 'monthly_fee': 'twenty' is not a number" in csv_run["stderr"]


def test_the_schema_is_inferred_and_registered_backward(csv_run):
    settings, topic = csv_run["settings"], csv_run["topic"]
    registry = registry_client(settings)
    assert registry.get_compatibility(value_subject(topic)) == "BACKWARD"
    fields = {f["name"]: f["type"] for f in json.loads(registry.get_version(value_subject(topic), 1)
                                                       .schema.schema_str)["fields"]}
    assert fields["plan"]["type"] == "enum" and fields["support_calls"] == ["null", "long"]
    assert fields["name"] == "string" and fields["monthly_fee"] == "double"
    assert [f["name"] for f in fields["address"]["fields"]] == ["city", "zip"]
    assert csv_run["summary"]["feature_view"] == "customers@1"


def test_exactly_one_prediction_per_row_naming_the_view(csv_run):
    settings, rows = csv_run["settings"], csv_run["rows"]
    predictions = predictions_of(settings)
    per_id = Counter(p["record_id"] for p in predictions)
    assert {rid for rid in per_id} == {r["customer_id"] for r in rows} | set(csv_run["evolved_ids"])
    assert set(per_id.values()) == {1}
    assert {p["feature_view"] for p in predictions} == {"customers@1"}
    assert {p["input_topic"] for p in predictions} == {csv_run["topic"]}


def test_the_model_learns_beyond_the_majority_class(csv_run):
    rows = csv_run["rows"]
    truth = {r["customer_id"]: r["churned"] == "yes" for r in rows}
    majority = max(Counter(truth.values()).values()) / len(truth)
    predictions = [p for p in predictions_of(csv_run["settings"]) if p["record_id"] in truth]
    accuracy = sum(p["predicted_label"] == truth[p["record_id"]] for p in predictions) / len(predictions)
    assert accuracy > majority + 0.1, (accuracy, majority)
    assert csv_run["stats"]["figures"]["accuracy"] > majority + 0.1


def test_backward_compatible_versions_keep_being_scored_and_a_misfit_is_dead_lettered(csv_run):
    settings, stats = csv_run["settings"], csv_run["stats"]
    assert stats["model"]["n_learned"] == ROWS + 100
    codec = topic_codec(registry_client(settings), settings, settings.topics.dead_letters)
    letters = [codec.decode(m.value()) for m in read_all(settings, settings.topics.dead_letters)]
    assert [(letter["error_type"], letter["key"]) for letter in letters] == [(FEATURE_VIEW_MISMATCH, b"misfit")]
    assert letters[0]["error_message"].startswith("feature view customers@1: customer_id: an id is a non-empty")
    assert stats["counters"]["view_mismatches"] == 1


def test_a_record_version_without_source_is_scored_by_the_default_view(isolated):
    """Issue 14 item 8: a v2 of the records topic that drops ``source`` was all dead-lettered."""
    settings = isolated
    init(settings, say=lambda _: None)
    registry = registry_client(settings)
    without_source = json.dumps(evolved(json.loads(schema_text("record")), "source"))
    registry.register_schema(value_subject(settings.topics.records), Schema(without_source, "AVRO"))
    log_path = settings.state_dir / "app.log"
    app = start_app(settings, log_path)
    try:
        wait_for_app(settings, app, log_path)
        producer = AvroProducer(settings)
        records = TopicCodec.for_schema(registry, settings.topics.records, without_source)
        labels = topic_codec(registry, settings, settings.topics.labels)
        for i in range(50):
            rid = f"r{i}"
            producer.send(records, rid.encode(), {"id": rid, "event_time": 1, "features": {"x": float(i % 2)}})
            producer.send(labels, rid.encode(), {"id": rid, "label": i % 2 == 0, "event_time": 2})
        producer.flush()
        stats = wait_for(lambda: (s := app_stats(settings)) and s["model"]["n_learned"] >= 50 and s, 120,
                         f"the records without source to be scored (see {log_path})")
    finally:
        stop_app(app)
    assert stats["counters"]["dead_letters"] == 0
    predictions = predictions_of(settings)
    assert len(predictions) == 50 and {p["feature_view"] for p in predictions} == {DEFAULT_REF}


def test_an_app_whose_view_reads_a_missing_topic_stops_with_a_clear_error(isolated):
    settings = dataclasses.replace(isolated, feature_view="elsewhere")
    init(settings, say=lambda _: None)
    view = DEFAULT_VIEW_YAML.replace("records:\n", f"records:\n  topic: {settings.topics.prefix}nowhere\n")
    open_config_store(settings).put("featureview.elsewhere", view)
    done = subprocess.run([sys.executable, "-m", "tools", "app"], capture_output=True, text=True, timeout=120,
                          env=os.environ | settings.to_env())
    assert done.returncode == 2, done.stderr
    assert f"topic {settings.topics.prefix}nowhere does not exist" in done.stderr
    assert "Traceback" not in done.stderr
