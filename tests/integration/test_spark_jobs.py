"""Real Spark jobs (local[2]) against the local Kafka and registry, sharing one SparkSession.

One module feeds one set of topics; the tests run in file order on it: read and decode with
quarantine, reproducible splits, warm-start through the registry into a running stream app
whose predictions Spark SQL queries while the stream runs, scoring with metrics, lineage.
"""

from __future__ import annotations

import dataclasses

import pytest

from apps.lineage_service.service import LineageService
from mlstream.kafka import clients
from mlstream.kafka.reader import end_offsets, read_all
from mlstream.kafka.serde import value_subject
from mlstream.kafka.topics import init
from mlstream.registry.metadata_log import open_registry
from producers.datasets import examples, source_name
from producers.feed import KafkaFeedSink, play
from spark_jobs import predictions, read_topic, score, session, splits, warm_start
from tests.conftest import free_port, isolated_settings
from tools.cli import main
from tools.demo import app_stats, start_app, stop_app, wait_for, wait_for_app
from tools.lineage_views import atlas_client, show

pytestmark = pytest.mark.integration

RECORDS = 300


def feed(settings, n: int, seed: int) -> None:
    play(examples("phishing"), KafkaFeedSink(settings), dataset="phishing", source=source_name("phishing"),
         seed=seed, label_delay_s=0.0, limit=n, progress=lambda line: None)


def bad_values(settings) -> None:
    """Not framed; framed with an id nobody registered; the records schema's id with a body that is no record."""
    schema_id = clients.registry_client(settings).get_latest_version(
        value_subject(settings.topics.records)).schema_id
    producer = clients.producer(settings)
    for value in (b"not avro at all", b"\x00\x7f\xff\xff\xfe" + b"\x02id",
                  b"\x00" + schema_id.to_bytes(4, "big") + b"\xff\xff\xff"):
        producer.produce(settings.topics.records, key=b"bad", value=value)
    assert producer.flush(10) == 0


@pytest.fixture(scope="module")
def fed(services, spark, tmp_path_factory):
    settings = isolated_settings(services, tmp_path_factory.mktemp("spark") / "state")
    settings = dataclasses.replace(settings, lineage_port=free_port(), prediction_metrics=False)
    init(settings, say=lambda line: None)
    feed(settings, RECORDS, seed=1)
    bad_values(settings)
    return settings


def quiet(line: str) -> None:
    pass


def test_a_missing_topic_or_registry_is_a_clear_error_before_spark_starts(services, tmp_path, capsys, monkeypatch):
    settings = isolated_settings(services, tmp_path / "state")
    for name, value in settings.to_env().items():
        monkeypatch.setenv(name, value)
    assert main(["spark", "read"]) == 2
    assert f"topic(s) {settings.topics.records} do not exist" in capsys.readouterr().err
    init(settings, say=quiet)
    monkeypatch.setenv("MLSTREAM_SCHEMA_REGISTRY_URL", f"http://127.0.0.1:{free_port()}")
    assert main(["spark", "read"]) == 2
    assert "cannot be reached" in capsys.readouterr().err


def test_read_decodes_the_topic_and_quarantines_what_does_not_decode(spark, fed):
    result = read_topic.run(spark, fed, "records", say=quiet)
    assert (result["rows"], result["quarantined"]) == (RECORDS, 3)
    rows = spark.sql(f"SELECT count(DISTINCT id) AS ids, min(size(features)) AS f FROM {result['table']}").first()
    assert rows["ids"] == RECORDS and rows["f"] > 0
    kinds = {r["quarantine_kind"]: r for r in spark.table(result["quarantine_table"]).collect()}
    assert set(kinds) == {"NOT_CONFLUENT_FRAMED", "UNKNOWN_SCHEMA_ID", "DECODE_FAILED"}
    assert bytes(kinds["NOT_CONFLUENT_FRAMED"]["value"]) == b"not avro at all"
    assert kinds["UNKNOWN_SCHEMA_ID"]["schema_id"] == 0x7ffffffe and "not registered" in \
        kinds["UNKNOWN_SCHEMA_ID"]["quarantine_reason"]


def test_splits_are_reproducible_from_their_manifest_and_sampled(spark, fed):
    first = splits.run(spark, fed, "phish", 1, sampling={"method": "down", "seed": 7}, say=quiet)
    labelled = sum(s["rows"] for n, s in first["splits"].items() if n != "train")
    classes = {r[0]: r[1] for r in spark.sql("SELECT label_text, count(*) FROM "
                                             f"{first['splits']['train']['view']} GROUP BY 1").collect()}
    assert len(classes) == 2 and len(set(classes.values())) == 1, f"down-sampling left {classes}"
    assert labelled > 0 and first["splits"]["train"]["rows"] < RECORDS - labelled

    feed(fed, 60, seed=2)  # the topics move on; the recorded ranges do not
    again = splits.run(spark, fed, "phish", 2, manifest=first, say=quiet)
    assert {n: (s["rows"], s["rows_sha256"]) for n, s in again["splits"].items()} == \
        {n: (s["rows"], s["rows_sha256"]) for n, s in first["splits"].items()}
    up = splits.run(spark, fed, "phish", 3, sampling={"method": "up", "seed": 7}, say=quiet)
    sizes = [r[1] for r in spark.sql(f"SELECT label_text, count(*) FROM {up['splits']['train']['table']} "
                                     "GROUP BY 1").collect()]
    assert len(set(sizes)) == 1 and sum(sizes) > up["splits"]["train"]["rows"] - 1
    assert up["splits"]["test"]["rows"] > first["splits"]["test"]["rows"]  # it saw the 60 new records


def test_warm_start_is_served_by_the_stream_app_and_its_predictions_are_a_spark_table(spark, fed):
    log = fed.state_dir / "app.log"
    process = start_app(fed, log)
    queries = []
    try:
        wait_for_app(fed, process, log)
        result = warm_start.run(spark, fed, "phish", 1, model="phish", spec="logistic_regression", deploy=True,
                                say=quiet)
        assert result["train_rows"] > 0 and result["validation_accuracy"] is not None
        build = open_registry(fed).build(result["build"])
        assert build.examples_learned == result["train_rows"] and build.data["spark_splits"]["splits"]
        assert app_stats(fed)["model"]["name"] == "phish"

        queries = predictions.start(spark, fed, trigger_seconds=1.0, say=quiet)
        feed(fed, 80, seed=3)
        stats = wait_for(lambda: (s := app_stats(fed))["model"]["n_learned"] >= 80 and s, 90,
                         "the app learning from new labels")
        assert stats["model"]["version"] == build.version
        # Counted as messages, not offsets: the app's transactions leave commit markers at offsets of their own.
        produced = len(read_all(fed, fed.topics.predictions))

        def caught_up():
            return predictions.counts(spark, fed)["predictions_live"] >= produced

        wait_for(caught_up, 90, "the predictions table to hold every prediction")
        assert all(q.isActive for q in queries), "the stream stopped"
        row = spark.sql(f"SELECT count(*) AS n, sum(CAST(correct AS INT)) AS hits, count(label) AS labelled "
                        f"FROM {session.database(fed)}.predictions_with_labels "
                        f"WHERE model_name = 'phish' AND model_version = '{build.version}'").first()
        assert row["n"] >= 1 and row["labelled"] >= 1 and row["hits"] is not None
    finally:
        for q in queries:
            q.stop()
        stop_app(process)


def test_a_streaming_query_scores_the_stream_with_metrics_like_the_apps(spark, fed):
    from mlstream.metrics import open_store
    from mlstream.metrics.materializer import materialize

    result = score.run(spark, fed, available_now=True, say=quiet)
    decoded = sum(end_offsets(fed, fed.topics.records).values()) - 3
    assert result["records_scored"] == decoded and result["quarantined"] == 3
    kinds = sorted(r[0] for r in spark.table(f"{session.database(fed)}.score_quarantine")
                   .select("quarantine_kind").collect())
    assert kinds == ["DECODE_FAILED", "NOT_CONFLUENT_FRAMED", "UNKNOWN_SCHEMA_ID"]
    store = open_store(str(fed.state_dir / "metrics.db"))
    materialize(fed, store, until_caught_up=True)
    rows = store.read(model_deployment_crn=result["model_deployment_crn"])
    assert sum(r["metrics"]["records_scored"] for r in rows) == decoded
    assert any("accuracy" in r["metrics"] for r in rows)


def test_spark_jobs_are_in_the_lineage(fed, tmp_path):
    service = LineageService(fed, database=str(tmp_path / "lineage.db")).start()
    try:
        client = atlas_client(fed)
        database = session.database(fed)

        def graph():
            try:
                return show(client, f"spark_process:spark://{database}/splits-phish-v1@primary", fed.atlas_namespace)
            except Exception:
                return None

        text = wait_for(graph, 30, "the splits job in the lineage")
        assert f"{fed.topics.records}@primary" in text and f"{database}.phish_v1_train@primary" in text
        build = show(client, "ml_model_build:crn:mlstream:ml:local:model/phish/build/1", fed.atlas_namespace, depth=3)
        assert f"spark://{database}/warm-start-phish@primary" in build
        assert f"spark://{database}/splits-phish-v1@primary" in build
        assert f"spark://{database}/predictions@primary" in show(
            client, f"spark_table:{database}.stream_predictions@primary", fed.atlas_namespace)
    finally:
        service.stop()
