"""The metrics path on real services: Kafka sink -> metrics topic -> materializer -> SQLite and PostgreSQL.

PostgreSQL is Debian's server, installed and started by ``infra/postgres.sh``.
"""

from __future__ import annotations

import dataclasses
import pickle
import uuid

import pytest

import mlstream.metrics as metrics
from mlstream.kafka import clients
from mlstream.kafka.reader import read_all
from mlstream.kafka.topics import init
from mlstream.metrics import KafkaMetricsSink, MetricsTracker, PostgresMetricsStore, SqliteMetricsStore
from mlstream.metrics.materializer import materialize
from tests.conftest import infra_script

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def postgres_url():
    return infra_script("postgres.sh", 600)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    if request.param == "sqlite":
        yield SqliteMetricsStore(tmp_path / "metrics.db")
        return
    base = request.getfixturevalue("postgres_url")
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:10]}"  # a schema per test keeps tests apart in one database
    with psycopg.connect(base, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
    store = PostgresMetricsStore(f"{base}?options=-csearch_path%3D{schema}")
    yield store
    store.close()
    with psycopg.connect(base, autocommit=True) as admin:
        admin.execute(f"DROP SCHEMA {schema} CASCADE")


def test_tracked_metrics_travel_through_kafka_into_the_store(isolated, store, monkeypatch):
    init(isolated, say=lambda _: None)
    tracker = MetricsTracker(KafkaMetricsSink(isolated), "churn", "2", isolated.app_id)

    @tracker.model_metrics
    def predict(x):
        tracker.track_metric("x", x)
        return x > 0.5

    outs = [predict(x) for x in (0.2, 0.9)]
    tracker.track_delayed_metrics({"actual": 1.0}, outs[1]["uuid"])
    tracker.track_delayed_metrics({"actual": 0.0}, "no-such-prediction")
    tracker.track_aggregate_metrics({"accuracy": 0.5, "note": "two records"}, 1000, 2000)
    # a Spark executor gets a pickled copy: it opens its own producer
    pickle.loads(pickle.dumps(tracker)).track_aggregate_metrics({"accuracy": 1.0}, 3000, 4000)
    tracker.flush()

    junk = clients.producer(isolated)
    junk.produce(isolated.topics.metrics, value=b"not a metric")
    junk.flush(10)

    stats = materialize(isolated, store, until_caught_up=True)
    assert stats.read == 7 and stats.stored == 6 and stats.dead_lettered == 1

    rows = store.read(model_deployment_crn=tracker.model_deployment_crn)
    assert [r["predictionUuid"] for r in rows if r["predictionUuid"]] == [o["uuid"] for o in outs]
    by_uuid = {r["predictionUuid"]: r for r in rows}
    assert by_uuid[outs[1]["uuid"]]["metrics"] == {"x": 0.9, "actual": 1.0}
    assert by_uuid[outs[0]["uuid"]]["metrics"] == {"x": 0.2}
    aggregates = [r for r in rows if r["predictionUuid"] is None]
    assert [(a["startTimeStampMs"], a["endTimeStampMs"], a["metrics"]) for a in aggregates] == [
        (1000, 2000, {"accuracy": 0.5, "note": "two records"}), (3000, 4000, {"accuracy": 1.0})]
    assert all(r["modelBuildCrn"] == "crn:mlstream:ml:local:model/churn/build/2" for r in rows)
    assert store.unmatched_merges() == 1
    assert len(read_all(isolated, isolated.topics.dead_letters)) == 1

    # The module-level call, as CML users write it, reads the same rows from this store.
    monkeypatch.setitem(metrics._default, "store", store)  # what metrics.configure(store=...) does, undone after
    assert metrics.read_metrics(model_deployment_crn=tracker.model_deployment_crn) == {"metrics": rows}
    assert metrics.read_metrics(model_deployment_crn=tracker.model_deployment_crn, start_timestamp_ms=1000,
                                end_timestamp_ms=2000)["metrics"] == aggregates[:1]

    # Replaying the whole topic (a new consumer group) stores nothing twice.
    again = materialize(dataclasses.replace(isolated, app_id=isolated.app_id + "-replay"), store,
                        until_caught_up=True)
    assert again.stored == 0 and again.duplicates == 6
    assert store.read(model_deployment_crn=tracker.model_deployment_crn) == rows
