"""What the scorer serves: the champion, whose predictions are sent, and a challenger scored in shadow.

The ``score`` agent reads :attr:`Serving.champion` once per record; a deployment swaps it
with :meth:`Serving.install`, one assignment on the event loop, so the swap falls between
two records. Each scorer has a metrics tracker of its own, named after its role.
"""

from __future__ import annotations

from mlstream.metrics import MetricsSink, MetricsTracker
from mlstream.registry.records import CHAMPION
from mlstream.scoring.monitoring import ModelMonitor
from mlstream.scoring.scorer import StreamScorer
from mlstream.settings import Settings

MIN_ROLLING_ACCURACY = 0.7  # below it, an alert


def monitor_options(settings: Settings) -> dict:
    """The :class:`ModelMonitor` options of every build the app serves: threshold, its warm-up, drift features."""
    return {"min_rolling_accuracy": MIN_ROLLING_ACCURACY, "warm_up_labels": settings.alert_warm_up_labels,
            "drift_features": settings.drift_features}


class Serving:
    def __init__(self, app_id: str, metrics_sink: MetricsSink):
        self.app_id = app_id
        self.metrics_sink = metrics_sink
        self.champion: StreamScorer | None = None
        self.challenger: StreamScorer | None = None
        self._trackers: dict[int, MetricsTracker] = {}

    def install(self, role: str, scorer: StreamScorer) -> StreamScorer | None:
        """Serve ``scorer`` in ``role`` (champion or shadow); return the scorer it replaces."""
        name = self.app_id if role == CHAMPION else f"{self.app_id}-shadow"
        self._trackers[id(scorer)] = MetricsTracker(self.metrics_sink, scorer.model.name, scorer.model.version, name)
        previous = self.in_role(role)
        if role == CHAMPION:
            self.champion = scorer
        else:
            self.challenger = scorer
        return previous

    def in_role(self, role: str) -> StreamScorer | None:
        return self.champion if role == CHAMPION else self.challenger

    def scorers(self) -> list[StreamScorer]:
        """The champion, then the challenger if there is one."""
        return [s for s in (self.champion, self.challenger) if s is not None]

    def tracker(self, scorer: StreamScorer) -> MetricsTracker:
        return self._trackers[id(scorer)]

    def monitors(self) -> dict[str, ModelMonitor]:
        return {f"{s.model.name} v{s.model.version}": s.monitor for s in self.scorers()}
