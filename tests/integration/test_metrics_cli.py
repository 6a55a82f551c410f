"""`mlstream experiments run | compare` and `mlstream metrics read | materialize` on real services."""

from __future__ import annotations

import json

import pytest

from tools.cli import main
from mlstream.kafka.topics import init
from producers.datasets import examples, source_name
from producers.feed import KafkaFeedSink, play

pytestmark = pytest.mark.integration


def test_experiments_are_tracked_with_the_metrics_api_and_compared(isolated, monkeypatch, capsys):
    for name, value in isolated.to_env().items():
        monkeypatch.setenv(name, value)
    init(isolated, say=lambda _: None)
    play(examples("phishing"), KafkaFeedSink(isolated), dataset="phishing", source=source_name("phishing"),
         label_delay_s=0.0, limit=400, progress=lambda _: None)

    assert main(["experiments", "run", "--name", "lr-vs-tree", "--spec", "logistic_regression",
                 "--spec", "hoeffding_tree", "--json"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert [r["spec"] for r in results] == ["logistic_regression", "hoeffding_tree"]
    assert all(r["records_learned"] == 400 for r in results)

    assert main(["experiments", "compare", "--name", "lr-vs-tree", "--json"]) == 0
    runs = json.loads(capsys.readouterr().out)
    assert [(r["spec"], round(r["accuracy"], 6)) for r in runs] == \
        [(r["spec"], round(r["accuracy"], 6)) for r in results]
    assert all(r["topic"] == isolated.topics.records and r["offsets"].startswith("p0:0-") and r["records"] == 400
               for r in runs)
    assert main(["experiments", "compare", "--name", "lr-vs-tree"]) == 0
    table = capsys.readouterr().out
    assert "logistic_regression" in table and "hoeffding_tree" in table and "accuracy" in table

    assert main(["metrics", "read", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["metrics"]
    assert len(rows) == 2 and all(r["modelDeploymentCrn"].endswith("/deployment/experiment-lr-vs-tree") for r in rows)
    assert set(rows[0]) == {"modelDeploymentCrn", "modelBuildCrn", "modelCrn", "startTimeStampMs", "endTimeStampMs",
                            "predictionUuid", "metrics"}
    assert main(["metrics", "materialize", "--once", "--json"]) == 0  # nothing new: the runs are stored once
    assert json.loads(capsys.readouterr().out)["stored"] == 0


def test_tail_shows_metric_records_as_they_arrive(isolated):
    from mlstream.metrics import KafkaMetricsSink, MetricsTracker
    from mlstream.metrics.report import format_record, tail

    init(isolated, say=lambda _: None)
    tracker = MetricsTracker(KafkaMetricsSink(isolated), "m", "1", "tail-test")
    for i in range(3):
        tracker.track_aggregate_metrics({"n": i}, i, i + 1)
    tracker.flush()
    seen = []
    tail(isolated, seen.append, from_beginning=True, should_stop=lambda: len(seen) >= 3)
    assert [r["metrics"]["n"] for r in seen] == [0.0, 1.0, 2.0]
    assert "aggregate" in format_record(seen[0]) and "m/deployment/tail-test" in format_record(seen[0])
