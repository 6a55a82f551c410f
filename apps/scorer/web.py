"""The app's web views beside its agents: Prometheus ``/metrics`` and the live ``/dashboard/``.

Figures are read at scrape time from what the agents already keep (counters,
monitors), so serving them costs the stream nothing; only the processing
latency histogram is observed per record.
"""

from __future__ import annotations

from typing import Callable

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from apps.scorer.dashboard import LiveHistory
from apps.web import serve_dashboard, serve_prometheus
from mlstream.scoring.monitoring import ModelMonitor

LATENCY_BUCKETS_S = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
#: counter name in the app -> (Prometheus name, help)
COUNTERS = {
    "records_in": ("mlstream_records_in", "Messages read from the records topic"),
    "labels_in": ("mlstream_labels_in", "Messages read from the labels topic"),
    "predictions_out": ("mlstream_predictions_out", "Predictions written"),
    "dead_letters": ("mlstream_dead_letters", "Messages sent to the dead-letter topic"),
    "alerts": ("mlstream_alerts", "Alerts sent to the alerts topic"),
    "invalid_values": ("mlstream_invalid_values", "Records and labels dead-lettered as INVALID_VALUE"),
    "background_failures": ("mlstream_background_failures", "Timer and task runs that failed (logged)"),
    "materializer_restarts": ("mlstream_materializer_restarts", "Times the metrics materializer was started again"),
}


class AppCollector:
    """Counters, consumer lag and per-version model figures, read when Prometheus scrapes."""

    def __init__(self, counters: dict, monitors: Callable[[], dict[str, ModelMonitor]],
                 lag: Callable[[], dict[str, int]]):
        self.counters, self.monitors, self.lag = counters, monitors, lag

    def collect(self):
        for key, (name, help_text) in COUNTERS.items():
            family = CounterMetricFamily(name, help_text)
            family.add_metric([], float(self.counters.get(key, 0)))
            yield family
        lag = GaugeMetricFamily("mlstream_consumer_lag", "Messages not yet read, per input topic", labels=["topic"])
        for topic, behind in self.lag().items():
            lag.add_metric([topic], float(behind))
        yield lag
        model = GaugeMetricFamily("mlstream_model_metric", "Monitor figures per model version",
                                  labels=["model", "version", "metric"])
        for monitor in self.monitors().values():
            for metric, value in monitor.figures().items():
                model.add_metric([monitor.model_name, monitor.model_version, metric], value)
        yield model


def prometheus_registry(counters: dict, monitors: Callable[[], dict[str, ModelMonitor]],
                        lag: Callable[[], dict[str, int]]) -> tuple[CollectorRegistry, Histogram]:
    """Everything ``/metrics`` exports: the :class:`AppCollector` and the processing latency histogram."""
    registry = CollectorRegistry()
    latency = Histogram("mlstream_processing_latency_seconds", "From a record's arrival to its prediction",
                        buckets=LATENCY_BUCKETS_S, registry=registry)
    registry.register(AppCollector(counters, monitors, lag))
    return registry, latency


class WebViews:
    def __init__(self, app, live: LiveHistory, counters: dict, monitors: Callable[[], dict[str, ModelMonitor]],
                 lag: Callable[[], dict[str, int]], clock_ms: Callable[[], int]):
        self.registry, self.latency = prometheus_registry(counters, monitors, lag)
        self.live = live
        self.clock_ms = clock_ms
        self._install(app)

    def observe_latency(self, latency_ms: float) -> None:
        self.latency.observe(latency_ms / 1000.0)

    def _install(self, app) -> None:
        live, clock_ms = self.live, self.clock_ms
        serve_prometheus(app, self.registry)
        serve_dashboard(app, "dashboard", lambda window_s: live.snapshot(clock_ms(), window_s))

