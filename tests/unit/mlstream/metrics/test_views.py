"""What people see of the metrics: the Prometheus text, tables, experiment comparison."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest

from mlstream.metrics import EmbeddedMetricsSink, MetricsTracker
from mlstream.metrics.experiments import EXPERIMENT_VERSION, compare, deployment_name, format_comparison
from mlstream.metrics.report import format_rows
from mlstream.scoring.monitoring import ModelMonitor
from apps.scorer.web import AppCollector


def test_prometheus_text_has_counters_lag_and_model_figures():
    monitor = ModelMonitor("lr", "2")
    monitor.on_scored(1.0)
    monitor.on_outcome(True, False, 10, score=0.8)
    registry = CollectorRegistry()
    registry.register(AppCollector({"records_in": 7, "dead_letters": 1}, lambda: {"lr v2": monitor},
                                   lambda: {"t.records": 3}))
    text = generate_latest(registry).decode()
    assert "mlstream_records_in_total 7.0" in text and "mlstream_dead_letters_total 1.0" in text
    assert 'mlstream_consumer_lag{topic="t.records"} 3.0' in text
    assert 'mlstream_model_metric{metric="accuracy",model="lr",version="2"} 0.0' in text


def test_experiment_runs_compare_side_by_side(tmp_path):
    sink = EmbeddedMetricsSink(str(tmp_path / "m.db"))
    for spec, accuracy in (("logistic_regression", 0.9), ("hoeffding_tree", 0.8)):
        tracker = MetricsTracker(sink, spec, EXPERIMENT_VERSION, deployment_name("a"))
        tracker.start_run({"spec": spec, "records": 100.0})
        tracker.track_metric("accuracy", accuracy)
    MetricsTracker(sink, "other", EXPERIMENT_VERSION, deployment_name("b")).start_run({"spec": "other"})
    runs = compare(sink.store, "a")
    assert [(r["spec"], r["accuracy"]) for r in runs] == [("logistic_regression", 0.9), ("hoeffding_tree", 0.8)]
    assert len(compare(sink.store, None)) == 3
    table = format_comparison(runs)
    assert "0.9000" in table and "hoeffding_tree" in table
    assert "accuracy=0.9" in format_rows(sink.store.read())
