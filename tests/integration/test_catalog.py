"""The shared catalog end to end: Spark jobs write managed tables and views into the Hive metastore
(PostgreSQL), their files on S3Proxy through s3a, and an independent HiveServer2 client (PyHive)
reads the same rows from the SQL endpoint (Spark's Thrift server), masks and all.

The catalog starts once for the module (``infra/catalog/catalog.sh``; the first run fetches
~660 MB of jars). The Spark jobs run as ``mlstream spark ...`` processes: a JVM takes its
catalog and class path once, and this session's shared ``spark`` fixture has none.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import subprocess
import sys
import time
import uuid

import pytest

from mlstream.kafka import clients
from mlstream.kafka.serde import TopicCodec, schema_text
from mlstream.kafka.topics import init
from mlstream.settings import REPO_ROOT as REPO
from producers import pii_customers
from tests.conftest import free_port, isolated_settings
from tests.integration.raw_customers import prepare_raw_customers

pytestmark = pytest.mark.integration

PREDICTIONS = 40
CUSTOMERS = 60
S3PROXY_KEYS = {"AWS_ACCESS_KEY_ID": "mlstream", "AWS_SECRET_ACCESS_KEY": "mlstream-local-secret",
                "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture(scope="module")
def catalog(services, tmp_path_factory):
    """Settings of one test run on the running catalog: its own topics and database, the shared metastore."""
    done = subprocess.run(["bash", "infra/catalog/catalog.sh"], capture_output=True, text=True, timeout=1200,
                          env={**os.environ, "MLSTREAM_PYTHON": sys.executable}, cwd=REPO)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    env = dict(line.split("=", 1) for line in lines[:-1])
    for key, value in S3PROXY_KEYS.items():
        os.environ.setdefault(key, value)
    settings = isolated_settings(services, tmp_path_factory.mktemp("catalog") / "state")
    return dataclasses.replace(settings, lineage_port=free_port(), metastore_url=env["MLSTREAM_METASTORE_URL"],
                               warehouse=env["MLSTREAM_WAREHOUSE"], s3_endpoint_url=env["MLSTREAM_S3_ENDPOINT_URL"])


def mlstream_spark(settings, *args: str) -> dict:
    """``mlstream spark ARGS --json`` in its own process on these settings; its JSON result."""
    env = {**os.environ, **settings.to_env()}
    done = subprocess.run([sys.executable, "-m", "tools", "spark", "--driver-memory", "768m", *args, "--json"],
                          capture_output=True, text=True, timeout=300, env=env, cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def query(sql: str, user: str = "analyst") -> list[tuple]:
    from pyhive import hive

    connection = hive.connect(host="127.0.0.1", port=int(os.environ.get("MLSTREAM_THRIFT_PORT", "10000")),
                              auth="NOSASL", username=user)
    try:
        cursor = connection.cursor()
        cursor.execute(sql)
        return cursor.fetchall() if cursor.description else []
    finally:
        connection.close()


def produce_predictions(settings, n: int) -> list[str]:
    registry = clients.registry_client(settings)
    topic = settings.topics.predictions
    codec = TopicCodec.for_schema(registry, topic, schema_text("prediction"))
    producer = clients.producer(settings)
    now = int(time.time() * 1000)
    ids = []
    for i in range(n):
        ids.append(str(uuid.uuid4()))
        producer.produce(topic, key=f"r{i}".encode(), value=codec.encode({
            "prediction_id": ids[-1], "record_id": f"r{i}", "model_name": "m", "model_version": "1",
            "input_topic": settings.topics.records, "input_partition": 0, "input_offset": i,
            "predicted_label": i % 2 == 0, "score": 0.5 + i / (4 * n), "record_time": now, "scored_at": now,
            "latency_ms": 1.5, "feature_view": "default@builtin"}))
    assert producer.flush(30) == 0
    return ids


def test_a_table_a_spark_job_wrote_to_s3_is_read_from_the_sql_endpoint(catalog):
    init(catalog, say=lambda _: None)
    ids = produce_predictions(catalog, PREDICTIONS)
    result = mlstream_spark(catalog, "predictions", "--available-now", "--trigger-seconds", "1")
    assert result["predictions_live"] == PREDICTIONS
    db = catalog.topics.prefix.strip(".").replace("-", "_")

    rows = query(f"SELECT prediction_id, record_id, score FROM {db}.predictions_live")
    assert sorted(r[0] for r in rows) == sorted(ids)
    described = {r[0].strip(): r for r in query(f"DESCRIBE TABLE EXTENDED {db}.stream_predictions")}
    assert described["prediction_id"][2] == "UUID of this prediction."  # the Avro doc, as the column comment
    assert described["Type"][1].strip() == "MANAGED"
    assert described["Location"][1].startswith(f"{catalog.warehouse}{db}.db/stream_predictions")
    partition_info = [r[0].strip() for r in query(f"DESCRIBE {db}.stream_predictions")]
    assert partition_info.count("kafka_date") == 2  # a column, and again under "# Partition Information"

    # The files are S3Proxy's objects, one folder per day (the partition column).
    import boto3

    s3 = boto3.client("s3", endpoint_url=catalog.s3_endpoint_url, region_name="us-east-1")
    bucket = catalog.warehouse.removeprefix("s3a://").split("/")[0]
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=f"{db}.db/stream_predictions/")
            .get("Contents", [])]
    assert any("/kafka_date=" in k and k.endswith(".parquet") for k in keys), keys


def test_the_lineage_goes_from_the_topic_through_spark_and_the_hive_table_to_its_s3_path(catalog, tmp_path):
    from apps.lineage_service.service import LineageService
    from tools.demo import wait_for
    from tools.lineage_views import atlas_client, show

    db = catalog.topics.prefix.strip(".").replace("-", "_")
    service = LineageService(catalog, database=str(tmp_path / "lineage.db")).start()
    try:
        client = atlas_client(catalog)

        def graph():
            try:
                return show(client, f"hive_table:{db}.stream_predictions@primary", catalog.atlas_namespace, depth=3)
            except Exception:
                return None

        text = wait_for(graph, 60, "the predictions table in the lineage")
        assert f"{catalog.topics.predictions}@primary" in text
        assert f"spark://{db}/predictions@primary" in text
        assert f"s3a://mlstream-warehouse/{db}.db/stream_predictions/@primary" in text
        column = show(client, f"hive_column:{db}.stream_predictions.prediction_id@primary", catalog.atlas_namespace)
        assert f"{catalog.topics.predictions}@primary" in column  # column lineage: the topic's field
    finally:
        service.stop()


def test_a_topic_read_into_the_metastore_is_a_hive_table_in_the_lineage(catalog, tmp_path):
    from apps.lineage_service.service import LineageService
    from tools.demo import wait_for
    from tools.lineage_views import atlas_client, show

    init(catalog, say=lambda _: None)
    produce_predictions(catalog, 10)
    result = mlstream_spark(catalog, "read", "--topic", "predictions")
    db = catalog.topics.prefix.strip(".").replace("-", "_")
    assert result["table"] == f"{db}.predictions" and result["rows"] >= 10
    service = LineageService(catalog, database=str(tmp_path / "lineage.db")).start()
    try:
        client = atlas_client(catalog)

        def graph():
            try:
                return show(client, f"hive_table:{db}.predictions@primary", catalog.atlas_namespace, depth=2)
            except Exception:
                return None

        text = wait_for(graph, 60, "the read job's table in the lineage")
        assert f"spark://{db}/read@primary" in text and f"{catalog.topics.predictions}@primary" in text
        column = show(client, f"hive_column:{db}.predictions.score@primary", catalog.atlas_namespace)
        assert f"{catalog.topics.predictions}@primary" in column  # column lineage: the topic's field
    finally:
        service.stop()


def test_the_sql_endpoint_writes_tables_on_s3_too(catalog):
    db = catalog.topics.prefix.strip(".").replace("-", "_")
    query(f"CREATE DATABASE IF NOT EXISTS {db}")
    query(f"CREATE TABLE {db}.notes (id INT, note STRING) USING parquet")
    query(f"INSERT INTO {db}.notes VALUES (1, 'one'), (2, 'two')")
    assert query(f"SELECT id, note FROM {db}.notes ORDER BY id") == [(1, "one"), (2, "two")]
    location = {r[0].strip(): r[1] for r in query(f"DESCRIBE TABLE EXTENDED {db}.notes")}["Location"]
    assert location.startswith("s3a://")


def test_a_secure_view_masks_on_the_sql_endpoint_as_in_spark(catalog):
    settings = catalog
    init(settings, say=lambda _: None)
    raw = prepare_raw_customers(settings)
    registry = clients.registry_client(settings)
    codec = TopicCodec.for_schema(registry, raw, pii_customers.schema_json())
    producer = clients.producer(settings)
    customers = pii_customers.customers(CUSTOMERS, run="cat")
    for row in customers:
        producer.produce(raw, key=row["id"].encode(), value=codec.encode(row))
    assert producer.flush(30) == 0

    result = mlstream_spark(settings, "secure-view", "--topic", raw, "--team", "fraud", "--show", "1000")
    assert 0 < result["rows"] < CUSTOMERS  # the row filter kept some
    from_spark = sorted((r["id"], r["email"]) for r in result["sample"])
    from_endpoint = sorted(query(f"SELECT id, email FROM {result['view']}", user="fay"))
    assert from_endpoint == from_spark
    emails = {c["id"]: c["email"] for c in customers}
    assert all(email == hashlib.sha256(emails[i].encode()).hexdigest() for i, email in from_endpoint)


def test_the_sql_endpoints_queries_are_audited_per_user_table_and_column(catalog, services):
    from mlstream.security.audit import who
    from mlstream.security.audit_topic import read_audit
    from tools.security_audit import ship_warehouse_queries, warehouse_events_dir

    db = catalog.topics.prefix.strip(".").replace("-", "_")
    query(f"SELECT record_id, score FROM {db}.stream_predictions WHERE score > 0.6", user="carol")
    shipped = ship_warehouse_queries(catalog, warehouse_events_dir(services))
    assert shipped["audit_records"] >= 1
    rows = {(r["user"], r["access"]): r for r in who(read_audit(catalog), f"{db}.stream_predictions")}
    assert ("carol", "select") in rows and ("analyst", "select") in rows  # the first test's reader too
    carol = [r for r in read_audit(catalog) if r["reqUser"] == "carol"]
    assert carol[-1]["resType"] == "column" and carol[-1]["resource"].startswith(f"{db}/stream_predictions/")
    assert {"record_id", "score"} <= set(carol[-1]["resource"].rsplit("/", 1)[1].split(","))
    assert "score > 0.6" in carol[-1]["reqData"]
