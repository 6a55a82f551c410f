"""Running figures for one model version: counts, prequential and rolling quality, drift, alerts.

Quality is prequential: each prediction is judged against the label that comes
later, with the prediction made before the model learned that label.
Classification gets accuracy, and for binary labels log loss and ROC AUC;
regression gets MAE and RMSE; each cumulative and over the last
``rolling_window`` labels. River's ADWIN watches the error stream and
PageHinkley watches chosen features; a drift, or a rolling metric falling below
its threshold, comes back from :meth:`ModelMonitor.on_outcome` as an alert.

A threshold alert waits for a warm-up: ``warm_up_labels`` labels since the build
started serving (this monitor's ``records_learned``). With the default, twice the
rolling window, the window it judges holds predictions made after the model had
learned a full window of labels, so a cold start, whose first predictions come
from a model that has learned nothing, raises no alarm. Every alert says how
many labels its figure is based on (``labels_judged``).

    >>> monitor = ModelMonitor("phishing", "1")
    >>> monitor.on_scored(latency_ms=2.0)
    >>> monitor.on_outcome(predicted=True, actual=True, label_delay_ms=1500, score=0.9)
    []
    >>> figures = monitor.figures()
    >>> figures["records_scored"], figures["records_learned"], figures["accuracy"], figures["label_coverage"]
    (1.0, 1.0, 1.0, 1.0)
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
from river import drift, metrics, utils

from mlstream.scoring.roc_auc import BinnedROCAUC

LATENCY_SAMPLES = 5000
ERROR_DRIFT, FEATURE_DRIFT, METRIC_BELOW_THRESHOLD = "ERROR_DRIFT", "FEATURE_DRIFT", "METRIC_BELOW_THRESHOLD"
#: Below this probability clipping keeps log loss finite for a confident wrong answer.
PROBABILITY_FLOOR = 1e-15


@dataclass(frozen=True)
class Alert:
    alert_type: str
    subject: str
    detector: str
    value: float
    threshold: float | None
    records_learned: int
    message: str
    #: The labels the watched figure is based on: the rolling window's, ADWIN's window, a feature's observations.
    labels_judged: int = 0


class _Quality:
    """One river metric, cumulative and rolling, under one name."""

    def __init__(self, name: str, metric, window: int):
        self.name = name
        self.cumulative = metric()
        self.rolling = utils.Rolling(metric, window_size=window)

    def update(self, actual, predicted) -> None:
        self.cumulative.update(actual, predicted)
        self.rolling.update(actual, predicted)

    def figures(self) -> dict[str, float]:
        return {self.name: float(self.cumulative.get()), f"rolling_{self.name}": float(self.rolling.get())}


def default_warm_up_labels(rolling_window: int) -> int:
    """Twice the window: a model that learned one window of labels, judged over the next."""
    return 2 * rolling_window


class ModelMonitor:
    """The figures of one build while it serves.

    ``warm_up_labels``: labels since the build started serving before a threshold alert
    (default :func:`default_warm_up_labels`); at least ``rolling_window``, so the judged window is full.
    """

    def __init__(self, model_name: str, model_version: str, rolling_window: int = 500,
                 drift_features: tuple[str, ...] = (), min_rolling_accuracy: float | None = None,
                 warm_up_labels: int | None = None):
        warm_up_labels = default_warm_up_labels(rolling_window) if warm_up_labels is None else warm_up_labels
        if warm_up_labels < rolling_window:
            raise ValueError(f"warm_up_labels ({warm_up_labels}) must be at least the rolling window "
                             f"({rolling_window}): a threshold alert judges a full window")
        self.model_name = model_name
        self.model_version = model_version
        self.records_scored = 0
        self.records_learned = 0
        self.abstained = 0
        self.classification: bool | None = None
        self.rolling_window = rolling_window
        self.min_rolling_accuracy = min_rolling_accuracy
        self.warm_up_labels = warm_up_labels
        self.below_threshold = False
        self.label_outcome: dict[str, _Quality] = {}  # for predicted labels
        self.probability_outcome: dict[str, _Quality] = {}  # for binary probabilities
        self.error_detector = drift.ADWIN()
        self.feature_detectors = {name: drift.PageHinkley() for name in drift_features}
        self.feature_values_seen = dict.fromkeys(drift_features, 0)  # since the detector last fired (it resets)
        self.drifts = 0
        self.latency_ms: deque[float] = deque(maxlen=LATENCY_SAMPLES)
        self.label_delay_ms: deque[float] = deque(maxlen=LATENCY_SAMPLES)

    def on_scored(self, latency_ms: float) -> None:
        self.records_scored += 1
        self.latency_ms.append(latency_ms)

    def _start(self, actual) -> None:
        # A float label means regression; bool, int and str labels are classes.
        self.classification = not isinstance(actual, float)
        w = self.rolling_window
        if self.classification:
            self.label_outcome = {"accuracy": _Quality("accuracy", metrics.Accuracy, w)}
            if isinstance(actual, bool):
                self.probability_outcome = {"log_loss": _Quality("log_loss", metrics.LogLoss, w),
                                            "roc_auc": _Quality("roc_auc", BinnedROCAUC, w)}
        else:
            self.label_outcome = {"mae": _Quality("mae", metrics.MAE, w), "rmse": _Quality("rmse", metrics.RMSE, w)}

    def on_outcome(self, predicted, actual, label_delay_ms: float, score: float | None = None,
                   features: dict[str, float] | None = None) -> list[Alert]:
        """A label met its prediction; ``predicted`` is None if the model abstained.

        ``score`` is the probability the model gave ``predicted``. Returns the
        alerts this outcome raised (usually none).
        """
        if self.classification is None:
            self._start(actual)
        self.records_learned += 1
        self.label_delay_ms.append(label_delay_ms)
        alerts = self._watch_features(features or {})
        if predicted is None:
            self.abstained += 1
            return alerts
        for quality in self.label_outcome.values():
            quality.update(actual, predicted)
        if self.probability_outcome and score is not None and isinstance(predicted, bool):
            p_true = min(max(score if predicted else 1.0 - score, PROBABILITY_FLOOR), 1 - PROBABILITY_FLOOR)
            for quality in self.probability_outcome.values():
                quality.update(actual, p_true)
        error = float(predicted != actual) if self.classification else abs(float(actual) - float(predicted))
        alerts += self._watch_error(error)
        alerts += self._watch_threshold()
        return alerts

    def _watch_error(self, error: float) -> list[Alert]:
        before = self.error_detector.estimation
        self.error_detector.update(error)
        # ADWIN flags any change; only a rise in the error is bad news.
        if not self.error_detector.drift_detected or self.error_detector.estimation <= before:
            return []
        self.drifts += 1
        window = int(self.error_detector.width)
        return [Alert(ERROR_DRIFT, "error", "river.drift.ADWIN", self.error_detector.estimation, None,
                      self.records_learned, f"{self.model_name} v{self.model_version}: the error rose from "
                      f"{before:.3f} to {self.error_detector.estimation:.3f} (ADWIN, over its last {window} labels) "
                      f"after {self.records_learned} labels", window)]

    def _watch_features(self, features: dict) -> list[Alert]:
        alerts = []
        for name, detector in self.feature_detectors.items():
            if not isinstance(features.get(name), (int, float)):
                continue  # absent here, or a categorical (a string): PageHinkley watches numbers
            detector.update(float(features[name]))
            self.feature_values_seen[name] += 1
            if detector.drift_detected:
                self.drifts += 1
                seen, self.feature_values_seen[name] = self.feature_values_seen[name], 0
                alerts.append(Alert(FEATURE_DRIFT, name, "river.drift.PageHinkley", float(features[name]), None,
                                    self.records_learned, f"{self.model_name} v{self.model_version}: feature "
                                    f"{name!r} drifted (PageHinkley, over {seen} values) after "
                                    f"{self.records_learned} labels", seen))
        return alerts

    @property
    def warming_up(self) -> bool:
        """True until the build has learned ``warm_up_labels`` labels since it started serving."""
        return self.records_learned < self.warm_up_labels

    def _watch_threshold(self) -> list[Alert]:
        if self.min_rolling_accuracy is None or "accuracy" not in self.label_outcome or self.warming_up:
            return []
        rolling = self.label_outcome["accuracy"].rolling
        value = rolling.get()
        below = value < self.min_rolling_accuracy
        raised = below and not self.below_threshold  # once per crossing, again after a recovery
        self.below_threshold = below
        if not raised:
            return []
        judged = len(rolling.window)
        return [Alert(METRIC_BELOW_THRESHOLD, "rolling_accuracy", "threshold", value, self.min_rolling_accuracy,
                      self.records_learned, f"{self.model_name} v{self.model_version}: rolling accuracy {value:.3f} "
                      f"over the last {judged} labels fell below {self.min_rolling_accuracy:.3f} "
                      f"({self.records_learned} labels since it started serving)", judged)]

    def figures(self) -> dict[str, float]:
        """Everything known now, as a flat name -> number map for a metrics record."""
        out = {"records_scored": float(self.records_scored), "records_learned": float(self.records_learned),
               "label_coverage": self.records_learned / self.records_scored if self.records_scored else 0.0,
               "drifts_detected": float(self.drifts), "warm_up_labels": float(self.warm_up_labels),
               "warming_up": float(self.warming_up)}
        for quality in (*self.label_outcome.values(), *self.probability_outcome.values()):
            out.update(quality.figures())
        for field, samples in (("latency", self.latency_ms), ("label_delay", self.label_delay_ms)):
            if samples:
                p50, p99 = np.percentile(np.fromiter(samples, float), [50, 99])
                out[f"{field}_p50_ms"] = float(p50)
                out[f"{field}_p99_ms"] = float(p99)
        return out
