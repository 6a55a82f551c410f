"""The parts of `mlstream bench scorer` that need no Kafka: the baselines' job and join, the
figures over rounds, the latency percentiles, and the process figures read from /proc."""

from __future__ import annotations

import doctest
import os
import subprocess
import sys
import time

from mlstream.kafka.serde import schema_text
from mlstream.scoring.online_model import OnlineModel
from models import build
from producers.datasets import examples
from tools.bench import latency
from tools.bench.rounds import cpu_seconds, peak_rss_mb, process_tree
from tools.bench.scorer import CONTENDERS, Round, figures, format_table, with_ratios
from tools.bench.scoring_job import FramedAvro, InMemoryJoin, ScoringJob

SCHEMA_IDS = {1: "record", 2: "label", 3: "prediction"}


def job() -> ScoringJob:
    return ScoringJob(FramedAvro(lambda schema_id: schema_text(SCHEMA_IDS[schema_id])), "logistic_regression", "1", 3)


def test_framed_avro_round_trips_with_the_confluent_header():
    avro = job().avro
    data = avro.encode(2, {"id": "r1", "label": True, "event_time": 1_700_000_000_000})
    assert data[:5] == b"\x00\x00\x00\x00\x02"
    assert avro.decode(data)["label"] is True


def test_the_join_scores_first_and_learns_each_label_once_whichever_comes_first():
    join = InMemoryJoin(job())
    avro = join.job.avro
    data = list(examples("phishing"))[:200]
    predictions = []
    for i, (features, label) in enumerate(data):
        record = avro.encode(1, {"id": f"r{i}", "source": "test", "event_time": 0, "features": features})
        label_value = avro.encode(2, {"id": f"r{i}", "label": label, "event_time": 0})
        if i % 2:  # every other label comes before its record
            join.on_label(label_value)
            predictions.append(join.on_record(record, "records", 0, i, time.perf_counter()))
        else:
            predictions.append(join.on_record(record, "records", 0, i, time.perf_counter()))
            join.on_label(label_value)
    assert join.job.model.n_learned == 200
    assert join.awaiting_label == {} and join.early_labels == {}
    decoded = [avro.decode(p) for p in predictions]
    assert [p["record_id"] for p in decoded] == [f"r{i}" for i in range(200)]
    assert [p["input_offset"] for p in decoded] == list(range(200))
    # Prequential: each record scored before its own label is learned, early or not, so the scores
    # are those of the plain predict-then-learn loop
    reference = OnlineModel(build("logistic_regression"), "logistic_regression", "1")
    expected = []
    for features, label in data:
        expected.append(reference.predict(features).score)
        reference.learn(features, label)
    assert [p["score"] for p in decoded] == expected


def test_figures_are_the_median_and_best_of_the_rounds_with_ratios_to_each_peer():
    limit = figures([Round(1000.0, 0.1, None, 10, True), Round(3000.0, 0.3, None, 10, True),
                     Round(2000.0, 0.2, None, 10, True)])
    app = figures([Round(100.0, 2.0, 200.0, 10, True), Round(None, None, 250.0, 10, True)])
    assert (limit["records_per_second"], limit["records_per_second_best"]) == (2000, 3000)
    assert limit["cpu_seconds_per_1k"] == 0.2
    assert (app["records_per_second"], app["peak_rss_mb"], len(app["rounds"])) == (100, 250.0, 2)
    contenders = with_ratios({"in_process_limit": limit, "app": app})
    assert contenders["app"]["ratio_to"] == {"in_process_limit": 0.05}
    assert contenders["in_process_limit"]["ratio_to"] == {"app": 20.0}
    result = {"records": 10, "dataset": "sea-drift", "model": "logistic_regression", "repeat": 3, "cpus": 2,
              "load_average_before": [0.1, 0.1, 0.1], "load_average_after": [0.2, 0.1, 0.1],
              "contenders": {name: contenders.get(name, {"skipped": "skipped: not here"}) for name in CONTENDERS}}
    table = format_table(result)
    assert "skipped: not here" in table and "exactly once: yes" in table


def test_process_figures_cover_the_children():
    child = subprocess.Popen([sys.executable, "-c", "import time; sum(range(10**7)); time.sleep(30)"])
    try:
        time.sleep(1.0)  # the sum is done by then
        assert child.pid in process_tree(child.pid) and child.pid in process_tree(os.getpid())
        assert cpu_seconds(child.pid) > 0
        assert peak_rss_mb(child.pid) > 1
    finally:
        child.kill()
        child.wait()


def test_latency_percentiles_are_nearest_rank_and_none_where_records_were_never_predicted():
    assert doctest.testmod(latency).failed == 0
