"""The CML-shaped metrics API over the embedded sink and store: shapes, merging, bad input."""

from __future__ import annotations

import asyncio
import pickle

import pytest

import mlstream.metrics as metrics
from mlstream.metrics import EmbeddedMetricsSink, MetricsTracker, MetricValueError, SqliteMetricsStore
from mlstream.metrics.records import MERGE, ROW, metric_record

CML_KEYS = {"modelDeploymentCrn", "modelBuildCrn", "modelCrn", "startTimeStampMs", "endTimeStampMs",
            "predictionUuid", "metrics"}


@pytest.fixture
def tracker(tmp_path):
    clock = iter(range(1000, 100000, 10))
    return MetricsTracker(EmbeddedMetricsSink(str(tmp_path / "m.db")), "churn", "3", "scorer",
                          clock_ms=lambda: next(clock))


def test_a_decorated_prediction_gets_a_uuid_and_its_delayed_label(tracker):
    @tracker.model_metrics
    def predict(x):
        tracker.track_metric("score", 0.8)
        return "yes"

    out = predict(1)
    assert set(out) == {"prediction", "model_deployment_crn", "uuid"} and out["prediction"] == "yes"
    tracker.track_delayed_metrics({"actual": "no"}, out["uuid"])
    rows = tracker.sink.store.read()
    assert len(rows) == 1 and set(rows[0]) == CML_KEYS
    row = rows[0]
    assert row["predictionUuid"] == out["uuid"]
    assert row["modelCrn"] == "crn:mlstream:ml:local:model/churn"
    assert row["modelBuildCrn"] == "crn:mlstream:ml:local:model/churn/build/3"
    assert row["modelDeploymentCrn"] == out["model_deployment_crn"]
    assert row["metrics"] == {"score": 0.8, "actual": "no"}


def test_aggregates_are_rows_of_their_own_and_filters_apply(tracker):
    tracker.track_aggregate_metrics({"accuracy": 0.9}, 100, 200)
    tracker.track_aggregate_metrics({"accuracy": 0.7}, 300, 400, model_deployment_crn="crn:other")
    store = tracker.sink.store
    assert [r["metrics"]["accuracy"] for r in store.read()] == [0.9, 0.7]
    assert [r["metrics"]["accuracy"] for r in store.read(model_deployment_crn="crn:other")] == [0.7]
    assert [r["startTimeStampMs"] for r in store.read(start_timestamp_ms=250)] == [300]
    assert [r["endTimeStampMs"] for r in store.read(end_timestamp_ms=250)] == [200]
    assert store.read(model_build_crn="crn:mlstream:ml:local:model/churn/build/9") == []


def test_a_replayed_record_counts_once_and_a_duplicate_label_keeps_the_later_value(tmp_path):
    store = SqliteMetricsStore(tmp_path / "m.db")
    crns = ("m", "b", "d")
    row = metric_record(ROW, crns, {"p": 1.0}, 1, 1, prediction_uuid="u")
    first = metric_record(MERGE, crns, {"actual": 0.0}, 2, 2, prediction_uuid="u")
    second = metric_record(MERGE, crns, {"actual": 1.0}, 3, 3, prediction_uuid="u")
    assert store.put([row, first]) == 2
    assert store.put([row, first, second]) == 1
    assert store.count() == 3
    assert store.read()[0]["metrics"] == {"p": 1.0, "actual": 1.0}


def test_delayed_metrics_for_an_unknown_uuid_wait_and_are_counted(tmp_path):
    store = SqliteMetricsStore(tmp_path / "m.db")
    crns = ("m", "b", "d")
    store.put([metric_record(MERGE, crns, {"actual": 1.0}, 5, 5, prediction_uuid="later")])
    assert store.read() == [] and store.unmatched_merges() == 1
    store.put([metric_record(ROW, crns, {"p": 0.0}, 1, 1, prediction_uuid="later")])  # out of order
    assert store.read()[0]["metrics"] == {"p": 0.0, "actual": 1.0} and store.unmatched_merges() == 0


@pytest.mark.parametrize("bad", [{"x": [1]}, {"x": None}, {"x": float("nan")}, {"": 1.0}, {3: 1.0}])
def test_values_that_are_not_numbers_or_strings_are_refused(tracker, bad):
    with pytest.raises(MetricValueError):
        tracker.track_aggregate_metrics(bad, 1, 2)
    assert tracker.sink.store.count() == 0


def test_other_bad_calls_are_refused_with_a_clear_error(tracker):
    with pytest.raises(MetricValueError, match="uuid"):
        tracker.track_delayed_metrics({"a": 1}, None)
    with pytest.raises(MetricValueError, match="before"):
        tracker.track_aggregate_metrics({"a": 1}, 200, 100)
    with pytest.raises(MetricValueError, match="integer"):
        tracker.track_aggregate_metrics({"a": 1}, "yesterday", 100)
    with pytest.raises(MetricValueError, match="not a number"):
        tracker.track_metric("a", object())


def test_track_metric_outside_a_prediction_lands_in_the_run(tracker):
    run = tracker.start_run({"model": "hoeffding_tree", "offset_start": 0.0})
    tracker.track_metric("accuracy", 0.91)
    tracker.track_metric("log_loss", 0.3)
    (row,) = tracker.sink.store.read()
    assert row["predictionUuid"] == run
    assert row["metrics"] == {"model": "hoeffding_tree", "offset_start": 0.0, "accuracy": 0.91, "log_loss": 0.3}


def test_the_module_level_calls_use_the_configured_tracker_and_store(tmp_path):
    sink = EmbeddedMetricsSink(str(tmp_path / "m.db"))
    metrics.configure(MetricsTracker(sink, "m", "1", "script"), sink.store)

    @metrics.model_metrics
    def predict(x):
        metrics.track_metric("x", x)
        return x * 2

    out = predict(4)
    metrics.track_delayed_metrics({"y": 8}, out["uuid"])
    metrics.track_aggregate_metrics({"n": 1}, 0, 1)
    metrics.flush()
    result = metrics.read_metrics(model_deployment_crn=out["model_deployment_crn"])
    assert set(result) == {"metrics"} and len(result["metrics"]) == 2
    assert result["metrics"][1]["metrics"] == {"x": 4.0, "y": 8.0}


def test_sinks_pickle_for_spark_executors(tmp_path):
    sink = EmbeddedMetricsSink(str(tmp_path / "m.db"))
    sink.write(metric_record(ROW, ("m", "b", "d"), {}, 1, 1, prediction_uuid="u"))
    copy = pickle.loads(pickle.dumps(MetricsTracker(sink, "m", "1", "spark")))
    copy.track_aggregate_metrics({"n": 2}, 1, 2)
    assert copy.sink.store.count() == 2


def test_async_predictions_keep_their_own_metrics_when_interleaved(tracker):
    @tracker.model_metrics
    async def predict(x):
        tracker.track_metric("before", x)
        await asyncio.sleep(0.01 * (3 - x))  # the calls finish in reverse order
        tracker.track_metric("after", x)
        return x

    async def main():
        return await asyncio.gather(*(predict(x) for x in (1, 2)))

    outs = asyncio.run(main())
    rows = {r["predictionUuid"]: r["metrics"] for r in tracker.sink.store.read()}
    assert [rows[o["uuid"]] for o in outs] == [{"before": 1.0, "after": 1.0}, {"before": 2.0, "after": 2.0}]
