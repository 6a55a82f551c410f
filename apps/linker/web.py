"""The linkage app's Prometheus ``/metrics``: its counters, the linker's, entities and live quality.

Read at scrape time from what the app already keeps, like the scorer's (apps/scorer/web.py).

    >>> from prometheus_client import generate_latest
    >>> registry = prometheus_registry(lambda: {"records_in": 3}, lambda: {"links": 2},
    ...                                lambda: {"entities": 1, "records_indexed": 3}, lambda: {"f1": 0.9})
    >>> text = generate_latest(registry).decode()
    >>> 'mlstream_linkage_records_in_total 3.0' in text, 'mlstream_linkage_linker_events_total{event="links"} 2.0' in text
    (True, True)
    >>> 'mlstream_linkage_quality{metric="f1"} 0.9' in text
    True
"""

from __future__ import annotations

from typing import Callable

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

Figures = Callable[[], dict]
#: the app's counter -> (Prometheus name, help)
COUNTERS = {
    "records_in": ("mlstream_linkage_records_in", "Messages read from the linkage records topic"),
    "links_out": ("mlstream_linkage_links_out", "Link events written"),
    "entity_updates_out": ("mlstream_linkage_entity_updates_out", "Entity updates written"),
    "dead_letters": ("mlstream_linkage_dead_letters", "Messages sent to the dead-letter topic"),
    "confirmed_pairs_in": ("mlstream_linkage_confirmed_pairs_in", "Messages read from the confirmed-pairs topic"),
}
#: the linker's events exported from the start, 0 until counted, so a dashboard shows 0 rather than no data
EVENTS = ("records_linked", "candidate_pairs", "links", "duplicate_records", "unknown_source", "empty_records",
          "records_without_blocking_keys")
#: gauge -> help
GAUGES = {
    "entities": "Entities (clusters of linked records) the linker holds",
    "records_indexed": "Records in the linker's index",
}


class LinkerCollector:
    """The app's counters, the linker's event counters (links, candidate pairs, bad input...), gauges, quality."""

    def __init__(self, counters: Figures, linker_counters: Figures, gauges: Figures, quality: Figures):
        self.counters, self.linker_counters, self.gauges, self.quality = counters, linker_counters, gauges, quality

    def collect(self):
        counters = self.counters()
        for key, (name, help_text) in COUNTERS.items():
            family = CounterMetricFamily(name, help_text)
            family.add_metric([], float(counters.get(key, 0)))
            yield family
        events = CounterMetricFamily("mlstream_linkage_linker_events", "What the linker counted, by event",
                                     labels=["event"])
        for event, count in sorted((dict.fromkeys(EVENTS, 0) | self.linker_counters()).items()):
            events.add_metric([event], float(count))
        yield events
        gauges = self.gauges()
        for name, help_text in GAUGES.items():
            yield GaugeMetricFamily(f"mlstream_linkage_{name}", help_text, value=float(gauges.get(name, 0)))
        quality = GaugeMetricFamily("mlstream_linkage_quality", "Live link quality against the truth key",
                                    labels=["metric"])
        for metric, value in sorted((self.quality() or {}).items()):
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                quality.add_metric([metric], float(value))
        yield quality


def prometheus_registry(counters: Figures, linker_counters: Figures, gauges: Figures,
                        quality: Figures) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(LinkerCollector(counters, linker_counters, gauges, quality))
    return registry
