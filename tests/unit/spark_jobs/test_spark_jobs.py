"""Spark jobs' pure parts: connector coordinates, table layout, lineage messages, batch metrics, the CLI.

Nothing here starts Spark; tests/integration/test_spark_jobs.py runs the jobs for real.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pyspark
import pytest

from mlstream.lineage.typesystem import TypeSystem
from mlstream.settings import Settings, Topics
from spark_jobs import lineage, score, session
from tools.cli import build_parser


@pytest.fixture
def settings(tmp_path) -> Settings:
    return dataclasses.replace(Settings.from_env(), state_dir=tmp_path, topics=Topics(prefix="test-1a2b."))


def test_connectors_match_the_installed_spark(settings):
    conf = session.spark_conf(settings)
    assert conf["spark.jars.packages"] == (f"org.apache.spark:spark-sql-kafka-0-10_2.13:{pyspark.__version__},"
                                           f"org.apache.spark:spark-avro_2.13:{pyspark.__version__}")
    assert conf["spark.master"] == "local[2]" and conf["spark.sql.warehouse.dir"].startswith(str(settings.state_dir))


def test_the_ivy_cache_can_be_moved(settings, monkeypatch):
    assert "spark.jars.ivy" not in session.spark_conf(settings)
    monkeypatch.setenv("MLSTREAM_SPARK_IVY", "/cache/ivy")
    assert session.spark_conf(settings)["spark.jars.ivy"] == "/cache/ivy"


def test_tables_live_in_a_database_named_after_the_topic_prefix(settings):
    assert session.database(settings) == "test_1a2b"
    assert session.table_name(settings, "records") == "test_1a2b.records"
    assert session.table_path(settings, "records") == Path(settings.state_dir) / "spark/warehouse/test_1a2b/records"
    assert session.database(dataclasses.replace(settings, topics=Topics(prefix=""))) == "mlstream"


def test_job_lineage_is_valid_atlas_and_links_topics_tables_views_paths_and_builds():
    notification = lineage.job_notification(
        "warm-start", [("topic", "mlstream.records"), ("table", "mlstream.phish_v1_train", False),
                       ("table", "mlstream.phish_train", True), ("s3", "s3a://lake/phish/")],
        [("build", "crn:mlstream:ml:local:model/phish/build/1", "phish", 1, {"spec": "logistic_regression"})],
        namespace="primary", database="mlstream", bootstrap_servers="localhost:9092", user="me")
    assert TypeSystem.load().validate_notification(notification) == []
    entities = notification["entities"]["entities"]
    process = entities[-1]
    assert process["typeName"] == "spark_process"
    inputs = [ref["uniqueAttributes"]["qualifiedName"] for ref in process["relationshipAttributes"]["inputs"]]
    assert inputs == ["mlstream.records@primary", "mlstream.phish_v1_train@primary", "mlstream.phish_train@primary",
                      "s3a://lake/phish/@primary"]
    outputs = process["relationshipAttributes"]["outputs"]
    assert [(o["typeName"], o["uniqueAttributes"]["qualifiedName"]) for o in outputs] == \
        [("ml_model_build", "crn:mlstream:ml:local:model/phish/build/1")]
    view = next(e for e in entities if e["attributes"]["qualifiedName"] == "mlstream.phish_train@primary")
    assert view["attributes"]["tableType"] == "VIEW"


def test_batch_metrics_without_labels_or_scores():
    assert score.batch_metrics([], quarantined=2) == {"records_scored": 0, "quarantined": 2, "labelled": 0}
    assert score.batch_metrics([("a", None, None)], 0) == {"records_scored": 1, "quarantined": 0,
                                                           "positive_share": 0.0, "labelled": 0}


def test_cli_parses_each_job():
    parser = build_parser()
    args = parser.parse_args(["spark", "splits", "--model", "phish", "--version", "2", "--sampling", "up"])
    assert (args.job, args.model, args.version, args.sampling, args.master) == ("splits", "phish", 2, "up", "local[2]")
    args = parser.parse_args(["spark", "--master", "local[4]", "bench", "--records", "1000", "--json"])
    assert (args.job, args.records, args.json, args.master) == ("bench", 1000, True, "local[4]")
    args = parser.parse_args(["spark", "warm-start", "--splits", "phish/1", "--deploy"])
    assert (args.splits, args.deploy) == ("phish/1", True)
    with pytest.raises(SystemExit):
        parser.parse_args(["spark", "read", "--topic", "metrics"])


def test_a_metastore_table_is_reported_as_hive_entities_down_to_its_s3_path_and_columns():
    from spark_jobs import lineage

    item = ("hive", "mlstream.stream_predictions", (("prediction_id", "string", "UUID of this prediction."),
                                                    ("kafka_offset", "bigint", ""), ("kafka_date", "date", "")),
            ("kafka_date",), "s3a://wh/mlstream.db/stream_predictions", "", "mlstream.predictions")
    made = lineage.metastore_entities(item, iter(str(-i) for i in range(1, 100)), namespace="cm",
                                      bootstrap_servers="localhost:9092", user="me")
    names = [(m["typeName"], m["attributes"]["qualifiedName"]) for m in made]
    assert names[0] == ("hive_table", "mlstream.stream_predictions@cm")
    assert ("hive_column", "mlstream.stream_predictions.prediction_id@cm") in names
    assert ("aws_s3_v2_directory", "s3a://wh/mlstream.db/stream_predictions/@cm") in names
    storage = next(m for m in made if m["typeName"] == "hive_process" and m["attributes"]["qualifiedName"]
                   .endswith(":location"))
    assert storage["relationshipAttributes"]["outputs"][0]["uniqueAttributes"]["qualifiedName"] == \
        "s3a://wh/mlstream.db/stream_predictions/@cm"
    lineages = [m for m in made if m["typeName"] == "hive_column_lineage"]
    # Only the topic's own fields are copied from it; the Kafka coordinates are not its fields.
    assert [m["relationshipAttributes"]["outputs"][0]["uniqueAttributes"]["qualifiedName"] for m in lineages] == \
        ["mlstream.stream_predictions.prediction_id@cm"]
    assert lineages[0]["relationshipAttributes"]["inputs"][0]["uniqueAttributes"]["qualifiedName"] == \
        "mlstream.predictions@cm"
