"""What the linkage dashboard shows, kept in memory by the linkage app, free of Kafka and of HTTP.

The agent reports each linked record (:meth:`LinkageHistory.on_linked`) and each merge;
every second the app calls :meth:`LinkageHistory.sample` with its counters and, when the
config says how to tell true entities, the live quality figures. :meth:`snapshot` is
the JSON the page polls for one window (5 min, 1 h or 24 h).

    >>> live = LinkageHistory()
    >>> live.on_linked(0.2, 6.0)
    >>> live.sample(1.0, {"links_out": 1}, {}, entities=1, model_fits=0, quality=None)
    >>> live.on_linked(0.3, 8.0)
    >>> live.sample(2.0, {"links_out": 2}, {}, entities=2, model_fits=0, quality=None)
    >>> [s["throughput"] for s in live.snapshot(2_000, 300)["samples"]], live.latency()["end_to_end_ms"]["p50"]
    ([0.0, 1.0], 8.0)
"""

from __future__ import annotations

from collections import deque

from apps.web import SampleHistory

THROUGHPUT_WINDOW_S = 5.0
QUALITY_FIGURES = ("precision", "recall", "f1", "pairs_completeness", "reduction_ratio")
#: counters of the linker shown as bad input
BAD_INPUT = ("dead_letters", "duplicate_records", "unknown_source", "empty_records", "records_without_blocking_keys")


def percentile(values, q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class LinkageHistory:
    def __init__(self, latency_window: int = 10_000, max_merges: int = 50):
        self.history = SampleHistory()
        self.restored: dict = {"samples": 0, "error": None, "done": False}  # from before this process
        self.merges: deque[dict] = deque(maxlen=max_merges)
        # the latest records, for /stats/ and the eval; the charts take each second's own
        self.processing_ms: deque[float] = deque(maxlen=latency_window)
        self.end_to_end_ms: deque[float] = deque(maxlen=latency_window)
        self._second_processing: list[float] = []
        self._second_end_to_end: list[float] = []
        self._outs: deque[tuple[float, int]] = deque()

    def on_linked(self, processing_ms: float, end_to_end_ms: float) -> None:
        self.processing_ms.append(processing_ms)
        self.end_to_end_ms.append(end_to_end_ms)
        self._second_processing.append(processing_ms)
        self._second_end_to_end.append(end_to_end_ms)

    def on_merge(self, at_ms: int, entity_id: str, merged_from: list[str], records: int) -> None:
        self.merges.append({"t_ms": at_ms, "entity_id": entity_id, "merged_from": merged_from, "records": records})

    def latency(self) -> dict:
        return {"processing_ms": {"p50": percentile(self.processing_ms, 0.5),
                                  "p99": percentile(self.processing_ms, 0.99)},
                "end_to_end_ms": {"p50": percentile(self.end_to_end_ms, 0.5),
                                  "p99": percentile(self.end_to_end_ms, 0.99)}}

    def sample(self, now_s: float, counters: dict, linker_counters: dict, *, entities: int, model_fits: int,
               quality: dict | None) -> None:
        out = counters.get("links_out", 0)
        # Over a few seconds, not since the last sample: timers fire unevenly under load.
        self._outs.append((now_s, out))
        while len(self._outs) > 2 and now_s - self._outs[1][0] >= THROUGHPUT_WINDOW_S:
            self._outs.popleft()
        first_s, first_out = self._outs[0]
        bad = {name: counters.get(name, linker_counters.get(name, 0)) for name in BAD_INPUT}
        self.history.add({
            "t": now_s,
            "throughput": (out - first_out) / (now_s - first_s) if now_s > first_s else 0.0,
            "records_in": counters.get("records_in", 0),
            "links_out": out,
            "links": linker_counters.get("links", 0),
            "candidate_pairs": linker_counters.get("candidate_pairs", 0),
            "entities": entities,
            "model_fits": model_fits,
            "bad_input": bad,
            "end_to_end_p50_ms": percentile(self._second_end_to_end, 0.5),
            "end_to_end_p99_ms": percentile(self._second_end_to_end, 0.99),
            "processing_p99_ms": percentile(self._second_processing, 0.99),
            "quality": {name: quality[name] for name in QUALITY_FIGURES} if quality and quality["records"] else None,
        })
        self._second_processing, self._second_end_to_end = [], []

    def restore(self, samples: list[dict]) -> None:
        """What the metrics topic kept from before this process started (older than anything it saw itself)."""
        self.history.replace_older(samples)
        self.restored = {"samples": len(samples), "error": None, "done": True}

    def restore_failed(self, reason: str) -> None:
        self.restored = {"samples": 0, "error": reason, "done": True}

    def snapshot(self, now_ms: int, window_s: int) -> dict:
        return {"now_ms": now_ms, "window_s": window_s, "samples": self.history.window(now_ms / 1000, window_s),
                "merges": [m for m in self.merges if m["t_ms"] >= now_ms - window_s * 1000],
                "restored": self.restored}


def report_of(sample: dict) -> dict[str, float]:
    """A sample as the flat numbers of a metrics record (what is not known yet left out).

    >>> report_of({"t": 9.0, "links_out": 4, "bad_input": {"dead_letters": 1}, "quality": None,
    ...            "end_to_end_p99_ms": None})
    {'links_out': 4.0, 'bad_input.dead_letters': 1.0}
    """
    out = {}
    for name, value in sample.items():
        if isinstance(value, dict):
            out |= {f"{name}.{key}": float(v) for key, v in value.items() if v is not None}
        elif name != "t" and value is not None:
            out[name] = float(value)
    return out


def sample_from_report(t: float, metrics: dict[str, float]) -> dict:
    """The sample a report was made from, at ``t`` (epoch seconds).

    >>> sample_from_report(9.0, {"links_out": 4.0, "bad_input.dead_letters": 1.0, "quality.f1": 0.9})
    ... # doctest: +NORMALIZE_WHITESPACE
    {'t': 9.0, 'quality': {'f1': 0.9}, 'end_to_end_p50_ms': None, 'end_to_end_p99_ms': None,
     'processing_p99_ms': None, 'links_out': 4.0, 'bad_input': {'dead_letters': 1.0}}
    """
    sample: dict = {"t": t, "quality": None, "end_to_end_p50_ms": None, "end_to_end_p99_ms": None,
                    "processing_p99_ms": None}
    for name, value in metrics.items():
        if "." in name:
            group, key = name.split(".", 1)
            sample[group] = (sample.get(group) or {}) | {key: value}
        else:
            sample[name] = value
    return sample
