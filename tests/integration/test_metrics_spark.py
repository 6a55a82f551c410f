"""The metrics API inside PySpark: a tracker built on the driver, pickled to Python workers, used there."""

from __future__ import annotations

import pytest

from mlstream.metrics import KafkaMetricsSink, MetricsTracker, SqliteMetricsStore
from mlstream.metrics.materializer import materialize
from mlstream.kafka.topics import init

pytestmark = pytest.mark.integration


def test_executors_and_the_driver_track_metrics_the_same_way(isolated, spark):
    init(isolated, say=lambda _: None)
    tracker = MetricsTracker(KafkaMetricsSink(isolated), "spark_model", "1", "spark-job")

    def track_partition(index, rows):
        values = list(rows)
        tracker.track_aggregate_metrics({"rows": len(values), "partition": index}, index, index + 1)
        tracker.flush()  # each Python worker has its own producer: deliver before the task ends
        yield len(values)

    counted = spark.sparkContext.parallelize(range(10), 2).mapPartitionsWithIndex(track_partition).collect()
    tracker.track_aggregate_metrics({"rows": float(sum(counted))}, 100, 200)  # the driver's total
    tracker.flush()

    store = SqliteMetricsStore(isolated.state_dir / "metrics.db")
    materialize(isolated, store, until_caught_up=True)
    rows = store.read(model_deployment_crn=tracker.model_deployment_crn)
    assert sorted(r["metrics"]["rows"] for r in rows) == [5.0, 5.0, 10.0]
    assert {r["metrics"].get("partition") for r in rows} == {0.0, 1.0, None}
