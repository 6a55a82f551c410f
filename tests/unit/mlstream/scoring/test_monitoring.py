"""Per-version monitoring: quality figures, label coverage, drift and threshold alerts."""

from __future__ import annotations

import itertools
import math
from collections import deque

import pytest

from mlstream.scoring.monitoring import ERROR_DRIFT, FEATURE_DRIFT, METRIC_BELOW_THRESHOLD, ModelMonitor
from mlstream.scoring.online_model import OnlineModel
from models import build
from producers.datasets import examples


def test_binary_classification_figures():
    monitor = ModelMonitor("m", "1", rolling_window=2)
    for _ in range(4):
        monitor.on_scored(latency_ms=1.0)
    monitor.on_outcome(True, True, 100, score=0.9)
    monitor.on_outcome(True, False, 300, score=0.6)
    monitor.on_outcome(False, False, 200, score=0.8)
    f = monitor.figures()
    assert f["accuracy"] == 2 / 3 and f["rolling_accuracy"] == 0.5
    assert f["label_coverage"] == 0.75
    expected_log_loss = -(math.log(0.9) + math.log(0.4) + math.log(0.8)) / 3
    assert math.isclose(f["log_loss"], expected_log_loss)
    assert 0.0 <= f["roc_auc"] <= 1.0 and f["label_delay_p50_ms"] == 200


def test_regression_figures():
    monitor = ModelMonitor("m", "1")
    monitor.on_outcome(1.0, 2.0, 0)
    monitor.on_outcome(3.0, 0.0, 0)
    f = monitor.figures()
    assert f["mae"] == 2.0 and math.isclose(f["rmse"], math.sqrt(5.0))
    assert "accuracy" not in f and "log_loss" not in f


def test_an_abstention_counts_as_learned_but_is_not_judged():
    monitor = ModelMonitor("m", "1")
    monitor.on_outcome(None, True, 0)
    monitor.on_outcome(True, True, 0, score=0.7)
    f = monitor.figures()
    assert f["records_learned"] == 2 and f["accuracy"] == 1.0


def test_rolling_accuracy_below_threshold_alerts_once_per_crossing():
    monitor = ModelMonitor("m", "1", rolling_window=10, min_rolling_accuracy=0.5, warm_up_labels=10)
    raised = []
    for i in range(60):
        wrong = 10 <= i < 30
        raised += [(i, a.alert_type) for a in monitor.on_outcome(True, not wrong, 0, score=0.9)
                   if a.alert_type == METRIC_BELOW_THRESHOLD]
    assert [kind for _, kind in raised] == [METRIC_BELOW_THRESHOLD]
    assert 14 <= raised[0][0] <= 16


def test_page_hinkley_flags_a_shifted_feature():
    monitor = ModelMonitor("m", "1", drift_features=("x",))
    alerts = []
    for i in range(600):
        x = 1.0 if i < 300 else 6.0
        alerts += [(i, a) for a in monitor.on_outcome(True, True, 0, score=0.9, features={"x": x, "y": 0.0})]
    feature_alerts = [i for i, a in alerts if a.alert_type == FEATURE_DRIFT and a.subject == "x"]
    assert feature_alerts and 300 <= feature_alerts[0] < 340


def test_a_categorical_drift_feature_is_not_watched_and_does_not_stop_learning():
    """A feature view's categoricals are strings: float('gold') raised and stopped the learn agent."""
    monitor = ModelMonitor("m", "1", drift_features=("plan", "x"))
    for i in range(50):
        assert monitor.on_outcome(True, True, 0, score=0.9, features={"plan": "gold", "x": 1.0}) == []
    assert monitor.records_learned == 50


def test_a_drift_injected_in_sea_raises_an_error_drift_alert_within_a_bounded_number_of_records():
    """SEA's concept moves at record 5,000 (the producer's default --drift-at); ADWIN must notice."""
    drift_at = 5000
    model = OnlineModel(build("logistic_regression"), "lr", "1")
    monitor = ModelMonitor("lr", "1")
    fired = []
    for i, (x, y) in enumerate(itertools.islice(examples("sea-drift", seed=42, drift_at=drift_at), drift_at + 1000)):
        p = model.predict(x)
        fired += [i for a in monitor.on_outcome(p.label, y, 0, score=p.score) if a.alert_type == ERROR_DRIFT]
        model.learn(x, y)
    assert fired, "no drift alert"
    assert fired[0] >= drift_at, f"false alarm at record {fired[0]}"
    assert fired[0] - drift_at <= 500  # measured: 311 records after the drift starts for this seed


def test_a_cold_start_raises_no_threshold_alert_during_the_warm_up():
    """An untrained model's first predictions are wrong; the window judged after the warm-up is not."""
    monitor = ModelMonitor("m", "1", min_rolling_accuracy=0.7)  # window 500, warm-up 1,000 labels
    assert monitor.warm_up_labels == 1000
    raised = []
    for i in range(3000):
        cold = i < 400
        raised += [(i, a) for a in monitor.on_outcome(True, not cold, 0, score=0.9)
                   if a.alert_type == METRIC_BELOW_THRESHOLD]
        if i == 998:
            assert monitor.figures()["warming_up"] == 1.0
    assert raised == []
    f = monitor.figures()
    assert f["warming_up"] == 0.0 and f["warm_up_labels"] == 1000.0


def test_without_the_warm_up_the_same_cold_start_alerts():
    """The test above can fail: a warm-up of one window judges the cold predictions."""
    monitor = ModelMonitor("m", "1", min_rolling_accuracy=0.7, warm_up_labels=500)
    raised = [a for i in range(1000) for a in monitor.on_outcome(True, i >= 400, 0, score=0.9)
              if a.alert_type == METRIC_BELOW_THRESHOLD]
    assert len(raised) == 1 and raised[0].records_learned == 500


def test_a_threshold_alert_says_how_many_labels_it_is_based_on():
    monitor = ModelMonitor("m", "1", rolling_window=10, min_rolling_accuracy=0.5, warm_up_labels=30)
    alerts = [a for i in range(60) for a in monitor.on_outcome(True, i < 40, 0, score=0.9)]
    (alert,) = alerts
    assert alert.labels_judged == 10 and alert.records_learned == 46
    assert "over the last 10 labels" in alert.message and "46 labels since it started serving" in alert.message


def test_the_warm_up_is_at_least_the_rolling_window():
    with pytest.raises(ValueError, match="at least the rolling window"):
        ModelMonitor("m", "1", rolling_window=500, warm_up_labels=100)


def test_sea_with_delayed_labels_from_a_cold_start_alerts_on_its_drift_only():
    """A fresh model, labels 50 records behind and a 0.7 threshold: nothing before SEA's drift, ADWIN soon after."""
    drift_at, delay = 5000, 50
    model = OnlineModel(build("logistic_regression"), "lr", "1")
    monitor = ModelMonitor("lr", "1", min_rolling_accuracy=0.7)
    in_flight: deque = deque()
    alerts = []
    for i, (x, y) in enumerate(itertools.islice(examples("sea-drift", seed=42, drift_at=drift_at), drift_at + 1000)):
        in_flight.append((x, y, model.predict(x)))
        if len(in_flight) > delay:  # the label of the record 50 back arrives
            x_old, y_old, p = in_flight.popleft()
            alerts += [(i - delay, a) for a in monitor.on_outcome(p.label, y_old, 0, score=p.score)]
            model.learn(x_old, y_old)
    assert alerts, "no alert at all"
    first_at, first = alerts[0]
    assert first_at >= drift_at, f"false alarm at record {first_at}: {first.message}"
    assert first.alert_type == ERROR_DRIFT and first_at - drift_at <= 500
    assert first.labels_judged > 0 and "over its last" in first.message
