"""`mlstream bench scorer` on the real local Kafka: a short run gives every contender's figures in
the documented shape, and every contender predicted each record of the backlog exactly once.
No figure is judged: speed is never asserted."""

from __future__ import annotations

import json

import pytest

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
