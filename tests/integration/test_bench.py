"""`mlstream bench scorer` and `bench latency` on the real local Kafka: a short run gives every
contender's figures in the documented shape, and every contender predicted each record exactly
once. No figure is judged: speed is never asserted."""

from __future__ import annotations

import json

import pytest

from tools.bench import latency
from tools.bench.scorer import CONTENDERS, bench_scorer, format_table

pytestmark = pytest.mark.integration
#: Enough that even the fastest contender's predictions span more than a millisecond.
RECORDS = 1000


def test_a_short_scorer_bench_measures_every_contender_on_the_same_backlog(isolated):
    lines = []
    result = json.loads(json.dumps(bench_scorer(isolated, dataset="sea-drift", records=RECORDS, repeat=1,
                                                say=lines.append)))
    assert set(result["contenders"]) == set(CONTENDERS)
    measured = {name: c for name, c in result["contenders"].items() if "skipped" not in c}
    # Quix Streams needs its own environment (make .venv-quix/.installed): without one, a note
    assert set(CONTENDERS) - set(measured) <= {"quix_streams"}
    for name, c in measured.items():
        assert c["records_per_second"] > 0 and c["records_per_second_best"] >= c["records_per_second"], name
        assert c["cpu_seconds_per_1k"] is None or c["cpu_seconds_per_1k"] > 0, name
        assert [(r["predictions"], r["every_record_once"]) for r in c["rounds"]] == [(RECORDS, True)], name
        assert set(c["ratio_to"]) == set(measured) - {name}, name
    for name in ("plain_loop", "app", "app_metrics_off"):
        assert measured[name]["peak_rss_mb"] > 10, name
    assert any(line.startswith("round 1/1: app") for line in lines)  # progress, as it goes
    table = format_table(result)
    assert all(title in table for title in ("in-process limit", "plain loop", "Quix Streams", "app, metrics off"))


def test_a_short_latency_bench_times_every_record_of_every_kafka_contender(isolated):
    result = json.loads(json.dumps(latency.bench_latency(isolated, dataset="sea-drift", rate=200, seconds=2,
                                                         say=lambda _: None)))
    assert set(result["contenders"]) == set(CONTENDERS) - {"in_process_limit"}
    measured = {name: c for name, c in result["contenders"].items() if "skipped" not in c}
    assert set(result["contenders"]) - set(measured) <= {"quix_streams"}
    for name, c in measured.items():
        # caught up well within the time it gets, however loaded the machine: no percentile is 'behind'
        assert (c["records"], c["predicted"]) == (400, 400), name
        assert 0 <= c["p50_ms"] <= c["p99_ms"] <= c["max_ms"], name
        assert c["feed_records_per_second"] > 0 and c["peak_rss_mb"] > 10, name
    assert "p99 ms" in latency.format_table(result)
