"""Running figures for one model version: counts, prequential and rolling quality, latency.

Quality is prequential: each prediction is judged against the label that comes
later, with the prediction made before the model learned that label.

    >>> monitor = ModelMonitor("phishing", "1")
    >>> monitor.on_scored(latency_ms=2.0)
    >>> monitor.on_outcome(predicted=True, actual=True, label_delay_ms=1500)
    >>> figures = monitor.figures()
    >>> figures["records_scored"], figures["records_learned"], figures["accuracy"]
    (1.0, 1.0, 1.0)
"""

from __future__ import annotations

from collections import deque

import numpy as np
from river import metrics, utils

LATENCY_SAMPLES = 5000


class ModelMonitor:
    def __init__(self, model_name: str, model_version: str, rolling_window: int = 500):
        self.model_name = model_name
        self.model_version = model_version
        self.records_scored = 0
        self.records_learned = 0
        self.classification: bool | None = None
        self.rolling_window = rolling_window
        self.cumulative = None
        self.rolling = None
        self.latency_ms: deque[float] = deque(maxlen=LATENCY_SAMPLES)
        self.label_delay_ms: deque[float] = deque(maxlen=LATENCY_SAMPLES)

    def on_scored(self, latency_ms: float) -> None:
        self.records_scored += 1
        self.latency_ms.append(latency_ms)

    def on_outcome(self, predicted, actual, label_delay_ms: float) -> None:
        """A label met its prediction; ``predicted`` is None if the model abstained."""
        if self.classification is None:
            # A float label means regression; bool, int and str labels are classes.
            self.classification = not isinstance(actual, float)
            metric = metrics.Accuracy if self.classification else metrics.MAE
            self.cumulative = metric()
            self.rolling = utils.Rolling(metric, window_size=self.rolling_window)
        self.records_learned += 1
        self.label_delay_ms.append(label_delay_ms)
        if predicted is None:
            return
        self.cumulative.update(actual, predicted)
        self.rolling.update(actual, predicted)

    def figures(self) -> dict[str, float]:
        """Everything known now, as a flat name -> number map for a metrics record."""
        out = {"records_scored": float(self.records_scored), "records_learned": float(self.records_learned)}
        if self.cumulative is not None:
            name = "accuracy" if self.classification else "mae"
            out[name] = float(self.cumulative.get())
            out[f"rolling_{name}"] = float(self.rolling.get())
        for field, samples in (("latency", self.latency_ms), ("label_delay", self.label_delay_ms)):
            if samples:
                p50, p99 = np.percentile(np.fromiter(samples, float), [50, 99])
                out[f"{field}_p50_ms"] = float(p50)
                out[f"{field}_p99_ms"] = float(p99)
        return out
