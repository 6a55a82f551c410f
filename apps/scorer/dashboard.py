"""What the live dashboard shows, kept in memory by the app, free of Kafka and of HTTP.

Whatever data plane scores the records feeds one :class:`LiveHistory`: every second
:meth:`LiveHistory.sample` with its counters and the monitors of its model versions;
predictions (with the features drift is watched on), alerts and deploys as they happen;
after a restart, :meth:`LiveHistory.restore` with what the topics kept (see
``apps/scorer/history.py``). :meth:`LiveHistory.snapshot` is the JSON the page polls for
one window (5 min, 1 h or 24 h).

    >>> from mlstream.scoring.monitoring import ModelMonitor
    >>> live = LiveHistory(drift_features=("x",))
    >>> monitor = ModelMonitor("m", "1", min_rolling_accuracy=0.7)
    >>> monitor.on_scored(2.0)
    >>> live.on_prediction(1_000, "m v1", True, 0.9, {"x": 0.5})
    >>> live.sample(1.0, {"records_in": 1, "predictions_out": 1}, {"m v1": monitor})
    >>> live.sample(2.0, {"records_in": 5, "predictions_out": 5}, {"m v1": monitor})
    >>> snap = live.snapshot(now_ms=2_000, window_s=300)
    >>> [s["throughput"] for s in snap["samples"]], [(m["version"], m["kind"]) for m in snap["markers"]]
    ([0.0, 4.0], [('m v1', 'serving')])
    >>> snap["thresholds"], snap["predictions"]["sent_last_minute"]
    ({'m v1': {'rolling_accuracy': 0.7}}, 1)
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import asdict

import numpy as np
from scipy import stats

from apps.web import WINDOWS, SampleHistory
from mlstream.registry.control import ROLLBACK
from mlstream.scoring.monitoring import FEATURE_DRIFT, Alert, ModelMonitor

#: Figures of each model version the charts draw. ``warm_up_labels`` and ``warming_up`` are the alert
#: warm-up's (threshold alerts wait until ``records_learned``, the labels since the build started serving,
#: reaches ``warm_up_labels``): shown when a monitor reports them.
VERSION_FIGURES = ("rolling_accuracy", "rolling_log_loss", "rolling_roc_auc", "rolling_mae", "rolling_rmse",
                   "accuracy", "label_coverage", "records_scored", "records_learned", "latency_p50_ms",
                   "latency_p99_ms", "drifts_detected", "warm_up_labels", "warming_up")
LAST_PREDICTIONS_MS = 60_000
THROUGHPUT_WINDOW_S = 5.0
#: values of a feature kept as its reference, and as its current window
REFERENCE_SIZE, CURRENT_SIZE = 1000, 500
HISTOGRAM_BINS = 12
#: a two-sample Kolmogorov-Smirnov test below this p-value flags the current window as drifted
KS_ALPHA = 0.01
FIRST_SCORED = "first_scored"  # a version with no training window: its first records are the reference


class FeatureWindow:
    """One feature of one version: its reference values, its latest values, and when PageHinkley fired.

    >>> window = FeatureWindow("training window of m v1", list(np.linspace(0, 1, 200)))
    >>> for v in np.linspace(0.5, 1.5, 200):
    ...     window.add(float(v))
    >>> view = window.view()
    >>> view["ks_flagged"], len(view["edges"]), round(sum(view["reference"]), 6), round(sum(view["current"]), 6)
    (True, 13, 1.0, 1.0)
    """

    def __init__(self, reference_source: str, reference: list[float] | None = None):
        self.reference_source = reference_source
        self.reference: list[float] = list(reference or [])[:REFERENCE_SIZE]
        self.filling = reference is None  # the reference is this version's first values
        self.current: deque[float] = deque(maxlen=CURRENT_SIZE)
        self.page_hinkley_at_ms: int | None = None

    def add(self, value: float) -> None:
        if self.filling and len(self.reference) < REFERENCE_SIZE:
            self.reference.append(value)
            return
        self.current.append(value)

    def view(self) -> dict:
        out = {"reference_source": self.reference_source, "reference_n": len(self.reference),
               "current_n": len(self.current), "page_hinkley_at_ms": self.page_hinkley_at_ms,
               "edges": [], "reference": [], "current": [], "ks_statistic": None, "ks_p": None, "ks_flagged": False}
        if len(self.reference) < 20 or len(self.current) < 20:
            return out
        reference, current = np.asarray(self.reference), np.asarray(self.current)
        edges = np.linspace(min(reference.min(), current.min()), max(reference.max(), current.max()),
                            HISTOGRAM_BINS + 1)
        test = stats.ks_2samp(reference, current)
        return out | {"edges": [float(e) for e in edges],
                      "reference": [float(f) for f in np.histogram(reference, edges)[0] / len(reference)],
                      "current": [float(f) for f in np.histogram(current, edges)[0] / len(current)],
                      "ks_statistic": float(test.statistic), "ks_p": float(test.pvalue),
                      "ks_flagged": bool(test.pvalue < KS_ALPHA)}


class LiveHistory:
    def __init__(self, drift_features: tuple[str, ...] = (), max_predictions: int = 2000, max_alerts: int = 200):
        self.created_s = time.time()
        self.history = SampleHistory()
        self.markers: list[dict] = []  # deploys, rollbacks, a version first seen serving
        self.alerts: deque[dict] = deque(maxlen=max_alerts)
        self.predictions: deque[tuple] = deque(maxlen=max_predictions)
        self.drift_features = drift_features
        self.features: dict[str, dict[str, FeatureWindow]] = {}  # version -> feature -> window
        self.thresholds: dict[str, dict[str, float]] = {}
        self.restored: dict = {"samples": 0, "markers": 0, "alerts": 0, "since_ms": None, "error": None,
                               "done": False}
        self._outs: deque[tuple[float, int]] = deque()  # (time, predictions out) of recent samples
        self._started = False  # sampled once
        self._alert_times: deque[int] = deque()  # raised_at_ms of the last day's alerts, all of them
        self._sent_per_second: deque[list[int]] = deque()  # [epoch second, predictions] of the last minute

    # ----- fed by the data plane -------------------------------------------------------------

    def on_prediction(self, at_ms: int, version: str, label, score: float | None,
                      features: dict | None = None) -> None:
        self.predictions.append((at_ms, version, label if isinstance(label, (bool, int, float, str)) else str(label),
                                 score))
        # Counted apart from the (capped) predictions kept for the chart.
        second, per_second = at_ms // 1000, self._sent_per_second
        if per_second and per_second[-1][0] == second:
            per_second[-1][1] += 1
        else:
            per_second.append([second, 1])
            while per_second[0][0] < second - LAST_PREDICTIONS_MS // 1000:
                per_second.popleft()
        if not self.drift_features or features is None:
            return
        windows = self.features.get(version)
        if windows is None:
            self.set_reference(version, f"the first {REFERENCE_SIZE:,} records {version} scored here "
                                        "(no training window known)", None)
            windows = self.features[version]
        for name, window in windows.items():
            value = features.get(name)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                window.add(float(value))

    def set_reference(self, version: str, source: str, values: dict[str, list[float]] | None) -> None:
        """The reference distribution of ``version``'s drift features: its build's training window, say.

        None: the version's first :data:`REFERENCE_SIZE` values stand in.
        """
        self.features[version] = {name: FeatureWindow(source, None if values is None else values.get(name, []))
                                  for name in self.drift_features}

    def on_alert(self, alert: Alert, raised_at_ms: int, version: str) -> None:
        self.alerts.append(asdict(alert) | {"raised_at_ms": raised_at_ms, "version": version})
        self._count_alerts([raised_at_ms])
        window = self.features.get(version, {}).get(alert.subject)
        if alert.alert_type == FEATURE_DRIFT and window is not None:
            window.page_hinkley_at_ms = raised_at_ms

    def on_deploy(self, at_ms: int, version: str, role: str, reason: str = "") -> None:
        """A deploy was applied (a rollback when its reason says so)."""
        self.markers.append(deploy_marker(at_ms, version, role, reason))

    def sample(self, now_s: float, counters: dict, monitors: dict[str, ModelMonitor]) -> None:
        out = counters.get("predictions_out", 0)
        # Over a few seconds, not since the last sample: timers fire unevenly under load.
        self._outs.append((now_s, out))
        while len(self._outs) > 2 and now_s - self._outs[1][0] >= THROUGHPUT_WINDOW_S:
            self._outs.popleft()
        first_s, first_out = self._outs[0]
        throughput = (out - first_out) / (now_s - first_s) if now_s > first_s else 0.0
        versions = {}
        for version, monitor in monitors.items():
            if not self._started:  # what this process served when it started (a restart shows so)
                self.markers.append({"t": now_s, "version": version, "kind": "serving", "role": "", "reason": ""})
            if monitor.min_rolling_accuracy is not None:
                self.thresholds[version] = {"rolling_accuracy": monitor.min_rolling_accuracy}
            figures = monitor.figures()
            versions[version] = {name: figures[name] for name in VERSION_FIGURES if name in figures}
        self._started = True
        self.history.add(sample_of(now_s, throughput, counters, versions))

    def restore(self, samples: list[dict], markers: list[dict], alerts: list[dict], since_ms: int) -> None:
        """What the topics kept from before this process started (older than anything it saw itself).

        The topics are read while the app runs: what this process did meanwhile is there too, and left out.
        """
        self.history.replace_older(samples)
        markers = [m for m in markers if m["t"] < self.created_s]
        alerts = [a for a in alerts if a["raised_at_ms"] < self.created_s * 1000]
        self.markers[:0] = markers
        for alert in reversed(alerts):
            self.alerts.appendleft(alert)
        newer, self._alert_times = list(self._alert_times), deque()
        self._count_alerts([a["raised_at_ms"] for a in alerts] + newer)
        self.restored = {"samples": len(samples), "markers": len(markers), "alerts": len(alerts),
                         "since_ms": since_ms, "error": None, "done": True}

    def _count_alerts(self, times_ms: list[int]) -> None:
        """Every alert of the last day is counted, though only the latest ``max_alerts`` are kept to show."""
        self._alert_times.extend(times_ms)
        while self._alert_times and self._alert_times[0] < self._alert_times[-1] - max(WINDOWS) * 1000:
            self._alert_times.popleft()

    def restore_failed(self, reason: str) -> None:
        self.restored |= {"error": reason, "done": True}

    # ----- read by the page -----------------------------------------------------------------

    def snapshot(self, now_ms: int, window_s: int) -> dict:
        since_s = now_ms / 1000 - window_s
        recent = [p for p in self.predictions if p[0] >= now_ms - LAST_PREDICTIONS_MS]
        return {
            "now_ms": now_ms,
            "window_s": window_s,
            "samples": self.history.window(now_ms / 1000, window_s),
            "markers": [m for m in self.markers if m["t"] >= since_s],
            "alerts": [a for a in self.alerts if a["raised_at_ms"] >= since_s * 1000],
            "alerts_in_window": sum(1 for t in self._alert_times if t >= since_s * 1000),
            "thresholds": self.thresholds,
            "predictions": {"sent_last_minute": self.sent_since(now_ms - LAST_PREDICTIONS_MS),
                            "shown": len(recent), "kept_at_most": self.predictions.maxlen,
                            "points": [{"t_ms": t, "version": v, "label": label, "score": score}
                                       for t, v, label, score in recent]},
            "drift": {"features": list(self.drift_features),
                      "versions": {version: {name: window.view() for name, window in windows.items()}
                                   for version, windows in self.features.items()}},
            "restored": self.restored,
        }

    def sent_since(self, since_ms: int) -> int:
        """Predictions sent since ``since_ms`` (of the last minute), all counted, not only those kept."""
        return sum(n for second, n in self._sent_per_second if second * 1000 >= since_ms)


def deploy_marker(at_ms: int, version: str, role: str, reason: str) -> dict:
    """A deploy on the timeline; a rollback when its reason says so (as the registry records it)."""
    return {"t": at_ms / 1000, "version": version, "role": role, "reason": reason,
            "kind": "rollback" if reason.startswith(ROLLBACK) else "deploy"}


def sample_of(t: float, throughput: float, counters: dict, versions: dict[str, dict]) -> dict:
    """One point of the charts: the app's counters and each version's figures at ``t``."""
    first = next(iter(versions.values()), {})
    return {"t": t, "throughput": throughput, "records_in": counters.get("records_in", 0),
            "predictions_out": counters.get("predictions_out", 0), "labels_in": counters.get("labels_in", 0),
            "dead_letters": counters.get("dead_letters", 0), "alerts": counters.get("alerts", 0),
            "latency_p50_ms": first.get("latency_p50_ms"), "latency_p99_ms": first.get("latency_p99_ms"),
            "versions": versions, "live": True}
