"""`mlstream demo --csv` end to end: the demo on a CSV this test writes, as a real process on the real broker.

The CSV is the typed "customers" table of tests/integration/customers.py (strings, an enum, a nullable
number, a dotted column, an ISO time column, a yes/no label) with two malformed rows. The
figures are counted from Kafka, not taken from the demo's own summary.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from collections import Counter

import pytest

from mlstream.config_store import open_config_store
from mlstream.kafka.clients import registry_client
from mlstream.kafka.reader import read_all
from mlstream.kafka.serde import UndecodableValue
from mlstream.kafka.topics import topic_codec
from tests.conftest import free_port, isolated_settings
from tests.integration.customers import customers, write_customers_csv
from tools.demo import UNDECODABLE_VALUES

pytestmark = pytest.mark.integration

ROWS = 1200
#: line number -> a malformed row put there
BROKEN = {40: "cust-x1,only,three",
          700: "cust-x2,Typo,basic,twenty,3,1,Leeds,12345,2025-01-01T00:00:00+00:00,no"}


@pytest.fixture(scope="module")
def demo_run(services, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("demo-csv")
    # The demo finds the session's services by their state (its `up` is a no-op then); it starts the
    # embedded lineage service: one of this test's own, stopped at the end.
    settings = dataclasses.replace(isolated_settings(services, tmp / "state"), lineage_port=free_port(),
                                   services_dir=services.local_services_dir)
    rows = customers(ROWS, seed=11)
    path = tmp / "customers.csv"
    write_customers_csv(path, rows, BROKEN)
    env = os.environ | settings.to_env()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "tools", "demo", "--csv", str(path), "--id-column", "customer_id",
             "--label-column", "churned", "--time-column", "signed_up", "--rate", "100", "--json"],
            capture_output=True, text=True, timeout=900, env=env)
    finally:
        subprocess.run([sys.executable, "-m", "tools", "lineage", "stop"], capture_output=True, timeout=60, env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = json.loads(done.stdout[done.stdout.rindex("\n{\n") + 1:])
    return {"settings": settings, "rows": rows, "summary": summary, "stdout": done.stdout, "path": path}


def decoded(settings, topic):
    codec = topic_codec(registry_client(settings), settings, topic)
    return [codec.decode(m.value()) for m in read_all(settings, topic)]


def test_every_row_is_scored_once_through_the_csvs_view(demo_run):
    settings, rows, summary = demo_run["settings"], demo_run["rows"], demo_run["summary"]
    predictions = decoded(settings, settings.topics.predictions)
    per_id = Counter(p["record_id"] for p in predictions)
    assert set(per_id) == {r["customer_id"] for r in rows} and set(per_id.values()) == {1}
    assert {p["feature_view"] for p in predictions} == {"customers@1"}
    assert {p["input_topic"] for p in predictions} == {f"{settings.topics.prefix}customers"}
    assert summary["records_produced"] == summary["records_scored"] == summary["records_learned"] == ROWS
    assert summary["feature_view"] == "customers@1" and summary["malformed_rows"] == len(BROKEN)


def test_the_model_learns_beyond_the_majority_class(demo_run):
    rows, summary = demo_run["rows"], demo_run["summary"]
    truth = {r["customer_id"]: r["churned"] == "yes" for r in rows}
    majority = max(Counter(truth.values()).values()) / len(truth)
    predictions = decoded(demo_run["settings"], demo_run["settings"].topics.predictions)
    accuracy = sum(p["predicted_label"] == truth[p["record_id"]] for p in predictions) / len(predictions)
    assert accuracy > majority, (accuracy, majority)
    assert summary["accuracy"] == pytest.approx(accuracy, abs=0.01)
    windows = summary["accuracy_per_250"]
    assert len(windows) == 5 and windows[-1] > majority, (windows, majority)  # the later rows, learned


def test_the_undecodable_messages_and_malformed_rows_are_named(demo_run):
    settings, path, stdout = demo_run["settings"], demo_run["path"], demo_run["stdout"]
    letters = decoded(settings, settings.topics.dead_letters)
    assert [letter["value"] for letter in letters] == UNDECODABLE_VALUES
    assert {letter["error_type"] for letter in letters} == {UndecodableValue.NOT_CONFLUENT_FRAMED,
                                                              UndecodableValue.UNKNOWN_SCHEMA_ID}
    assert {letter["source_topic"] for letter in letters} == {f"{settings.topics.prefix}customers"}
    assert demo_run["summary"]["dead_lettered"] == len(UNDECODABLE_VALUES)
    assert f"{path}:40: expected 10 fields, got 3: row skipped" in stdout
    assert f"{path}:700: column 'monthly_fee': 'twenty' is not a number" in stdout
    assert "mlstream demo summary: " in stdout and "feature view       customers@1 reading" in stdout


def test_the_lineage_names_the_csvs_topic(demo_run):
    settings, stdout = demo_run["settings"], demo_run["stdout"]
    topic = f"{settings.topics.prefix}customers"
    lineage = open_config_store(settings).get("lineage").text
    assert f"topic: {topic}" in lineage and f"topic: {settings.topics.records}" not in lineage
    assert f"<- kafka_topic {topic}@" in stdout and f"mlstream lineage readers {topic};" in stdout
