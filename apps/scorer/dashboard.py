"""What the live dashboard shows, kept in memory by the app, free of Kafka and of HTTP.

Every second the app calls :meth:`LiveHistory.sample` with its counters and the
monitors of its model versions; predictions and alerts are added as they happen.
:meth:`LiveHistory.snapshot` is the JSON the dashboard page polls.

    >>> from mlstream.scoring.monitoring import ModelMonitor
    >>> live = LiveHistory()
    >>> monitor = ModelMonitor("m", "1")
    >>> monitor.on_scored(2.0)
    >>> live.on_prediction(1_000, "1", True, 0.9)
    >>> live.sample(1.0, {"records_in": 1, "predictions_out": 1}, {"1": monitor})
    >>> live.sample(2.0, {"records_in": 5, "predictions_out": 5}, {"1": monitor})
    >>> snap = live.snapshot(now_ms=2_000)
    >>> [s["throughput"] for s in snap["samples"]], [d["version"] for d in snap["deploys"]]
    ([0.0, 4.0], ['1'])
"""

from __future__ import annotations

from collections import deque
from dataclasses import asdict

from mlstream.scoring.monitoring import Alert, ModelMonitor

#: Figures of each model version the charts draw.
VERSION_FIGURES = ("rolling_accuracy", "rolling_log_loss", "rolling_roc_auc", "rolling_mae", "rolling_rmse",
                   "accuracy", "label_coverage", "records_scored", "records_learned", "latency_p50_ms",
                   "latency_p99_ms")
LAST_PREDICTIONS_MS = 60_000
THROUGHPUT_WINDOW_S = 5.0


class LiveHistory:
    def __init__(self, horizon_samples: int = 600, max_predictions: int = 2000, max_alerts: int = 100):
        self.samples: deque[dict] = deque(maxlen=horizon_samples)
        self.deploys: list[dict] = []
        self.alerts: deque[dict] = deque(maxlen=max_alerts)
        self.predictions: deque[tuple] = deque(maxlen=max_predictions)
        self._outs: deque[tuple[float, int]] = deque()  # (time, predictions out) of recent samples

    def on_prediction(self, at_ms: int, version: str, label, score: float | None) -> None:
        self.predictions.append((at_ms, version, label if isinstance(label, (bool, int, float, str)) else str(label),
                                 score))

    def on_alert(self, alert: Alert, raised_at_ms: int, version: str) -> None:
        self.alerts.append(asdict(alert) | {"raised_at_ms": raised_at_ms, "version": version})

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
            if not any(d["version"] == version for d in self.deploys):
                self.deploys.append({"t": now_s, "version": version})
            figures = monitor.figures()
            versions[version] = {name: figures[name] for name in VERSION_FIGURES if name in figures}
        first = next(iter(versions.values()), {})
        self.samples.append({"t": now_s, "throughput": throughput, "records_in": counters.get("records_in", 0),
                             "dead_letters": counters.get("dead_letters", 0),
                             "latency_p50_ms": first.get("latency_p50_ms"), "latency_p99_ms": first.get("latency_p99_ms"),
                             "versions": versions})

    def snapshot(self, now_ms: int) -> dict:
        recent = [p for p in self.predictions if p[0] >= now_ms - LAST_PREDICTIONS_MS]
        return {
            "now_ms": now_ms,
            "samples": list(self.samples),
            "deploys": self.deploys,
            "alerts": list(self.alerts),
            "predictions": [{"t_ms": t, "version": v, "label": label, "score": score} for t, v, label, score in recent],
        }
