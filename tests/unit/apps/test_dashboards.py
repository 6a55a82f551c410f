"""The stream apps' Kafka-free helpers: the dashboards' state and their reports."""

import asyncio
import dataclasses

from apps.linker.app import LinkerApp
from apps.linker.dashboard import LinkageHistory
from apps.linker.settings import LinkageSettings, load_config
from apps.scorer.dashboard import LiveHistory
from apps.scorer.history import samples_from_metrics
from mlstream.metrics.sink import MetricsDeliveryError
from mlstream.scoring.monitoring import ERROR_DRIFT, FEATURE_DRIFT, Alert, ModelMonitor
from mlstream.settings import Settings


def test_linkage_history_takes_each_seconds_latency_and_shows_quality_once_there_are_records():
    live = LinkageHistory()
    for t, (links, latencies) in enumerate([(0, []), (10, [5.0] * 9 + [40.0]), (30, [6.0] * 20)]):
        for ms in latencies:
            live.on_linked(0.2, ms)
        quality = {"records": links, "precision": 1.0, "recall": 0.5, "f1": 2 / 3, "pairs_completeness": 0.9,
                   "reduction_ratio": 0.99}
        live.sample(float(t), {"links_out": links, "dead_letters": 1}, {"duplicate_records": 2}, entities=links,
                    model_fits=1, quality=quality)
    live.on_merge(3_000, "ent-a", ["ent-b"], 3)
    snap = live.snapshot(3_000, 300)
    assert [s["end_to_end_p99_ms"] for s in snap["samples"]] == [None, 40.0, 6.0]  # each second's own
    assert snap["samples"][-1]["bad_input"]["dead_letters"] == 1
    assert snap["samples"][-1]["bad_input"]["duplicate_records"] == 2
    assert snap["samples"][-1]["quality"]["recall"] == 0.5 and snap["merges"][0]["merged_from"] == ["ent-b"]
    assert live.latency()["end_to_end_ms"]["p99"] == 40.0  # /stats/ takes the latest records, not one second
    live.sample(3.0, {"links_out": 30}, {}, entities=30, model_fits=1, quality={"records": 0, "f1": 0.0})
    assert live.snapshot(3_000, 300)["samples"][-1]["quality"] is None


def test_live_history_keeps_throughput_versions_markers_alerts_and_counts_the_last_minute():
    live = LiveHistory()
    champion, challenger = ModelMonitor("lr", "1", min_rolling_accuracy=0.7), ModelMonitor("tree", "1")
    champion.on_scored(1.0)
    champion.on_outcome(True, True, 10, score=0.9)
    live.on_prediction(1_000, "lr v1", True, 0.9)
    live.on_prediction(70_000, "lr v1", False, 0.6)
    live.on_alert(Alert(ERROR_DRIFT, "error", "river.drift.ADWIN", 0.2, None, 5, "drift"), 71_000, "lr v1")
    live.on_deploy(2_000, "tree v1", "shadow")
    live.on_deploy(3_000, "lr v1", "champion", reason="rollback (automatic): accuracy fell")
    for t, out in enumerate([0, 10, 30, 60]):
        monitors = {"lr v1": champion} | ({"tree v1": challenger} if t >= 2 else {})
        live.sample(float(t), {"records_in": out, "predictions_out": out}, monitors)
    snap = live.snapshot(now_ms=75_000, window_s=300)
    assert [s["throughput"] for s in snap["samples"]] == [0.0, 10.0, 15.0, 20.0]  # over the last 5 s
    assert [(m["t"], m["version"], m["kind"]) for m in snap["markers"]] == [
        (2.0, "tree v1", "deploy"), (3.0, "lr v1", "rollback"), (0.0, "lr v1", "serving")]
    assert snap["samples"][-1]["versions"]["lr v1"]["rolling_accuracy"] == 1.0
    assert snap["thresholds"] == {"lr v1": {"rolling_accuracy": 0.7}}
    assert [p["t_ms"] for p in snap["predictions"]["points"]] == [70_000]
    assert snap["predictions"]["sent_last_minute"] == 1
    assert snap["alerts"][0]["alert_type"] == ERROR_DRIFT and snap["alerts"][0]["version"] == "lr v1"
    assert live.snapshot(now_ms=75_000, window_s=300)["markers"] and \
        not live.snapshot(now_ms=1_000_000, window_s=300)["markers"]  # outside the window


def test_the_last_minute_counts_every_prediction_not_only_those_kept_for_the_chart():
    live = LiveHistory(max_predictions=10)
    for i in range(500):
        live.on_prediction(100_000 + i * 100, "lr v1", True, 0.9)  # 500 over 50 s
    predictions = live.snapshot(now_ms=150_000, window_s=300)["predictions"]
    assert (predictions["sent_last_minute"], predictions["shown"], predictions["kept_at_most"]) == (500, 10, 10)
    assert live.snapshot(now_ms=200_000, window_s=300)["predictions"]["sent_last_minute"] == 100  # the last 10 s


def test_restored_history_goes_before_what_the_process_saw_itself():
    live = LiveHistory()
    live.sample(100.0, {"predictions_out": 1}, {"lr v1": ModelMonitor("lr", "1")})
    rows = [{"model_build_crn": "crn:mlstream:ml:local:model/lr/build/1", "end_timestamp_ms": end,
             "metrics": {"app_predictions_out": out, "rolling_accuracy": 0.8}}
            for end, out in ((60_000, 100.0), (65_000, 150.0), (70_000, 3.0), (120_000, 9.0))]
    samples = samples_from_metrics(rows)
    assert [s["throughput"] for s in samples] == [0.0, 10.0, 0.0, 0.12]  # none across the counters' restart
    live.restore(samples, [], [], since_ms=0)
    got = live.snapshot(now_ms=130_000, window_s=300)["samples"]
    assert [s["t"] for s in got] == [60.0, 65.0, 70.0, 100.0]  # the one after the process's first sample dropped
    assert got[0]["versions"] == {"lr v1": {"rolling_accuracy": 0.8}} and live.restored["samples"] == 4


def test_every_alert_of_the_window_is_counted_though_only_the_latest_are_kept():
    live = LiveHistory(max_alerts=5)
    for i in range(20):
        live.on_alert(Alert(FEATURE_DRIFT, "x", "river.drift.PageHinkley", 1.0, None, i, "drifted"), 1_000_000 + i,
                      "lr v1")
    snap = live.snapshot(now_ms=1_100_000, window_s=300)
    assert (len(snap["alerts"]), snap["alerts_in_window"]) == (5, 20)
    assert live.snapshot(now_ms=1_400_000, window_s=300)["alerts_in_window"] == 0


def test_restoring_leaves_out_what_this_process_did_while_the_topics_were_read():
    live = LiveHistory()
    before, now_ms = live.created_s - 60, int(live.created_s * 1000) + 1_000
    live.on_deploy(now_ms, "lr v2", "champion")
    older = {"t": before, "version": "lr v1", "role": "champion", "reason": "", "kind": "deploy"}
    again = {"t": now_ms / 1000, "version": "lr v2", "role": "champion", "reason": "", "kind": "deploy"}
    alert = {"raised_at_ms": now_ms, "alert_type": ERROR_DRIFT, "version": "lr v2"}
    live.restore([], [older, again], [alert], since_ms=0)
    snap = live.snapshot(now_ms=now_ms, window_s=300)
    assert [m["version"] for m in snap["markers"]] == ["lr v1", "lr v2"] and snap["alerts"] == []


def test_drift_compares_with_the_reference_and_is_flagged_by_the_test_or_page_hinkley():
    live = LiveHistory(drift_features=("x",))
    live.set_reference("lr v1", "training window of lr v1", {"x": [i / 100 for i in range(100)]})
    for i in range(200):
        live.on_prediction(i, "lr v1", True, 0.9, {"x": 0.5 + i / 200})  # moved up by half its range
    view = live.snapshot(now_ms=1_000, window_s=300)["drift"]["versions"]["lr v1"]["x"]
    assert view["ks_flagged"] and view["reference_source"] == "training window of lr v1"
    assert view["page_hinkley_at_ms"] is None
    live.on_alert(Alert(FEATURE_DRIFT, "x", "river.drift.PageHinkley", 1.0, None, 9, "drifted"), 900, "lr v1")
    assert live.snapshot(now_ms=1_000, window_s=300)["drift"]["versions"]["lr v1"]["x"]["page_hinkley_at_ms"] == 900
    # A version without a known training window takes its first values as the reference.
    for i in range(1_100):
        live.on_prediction(i, "lr v2", True, 0.9, {"x": 1.0})
    same = live.snapshot(now_ms=1_000, window_s=300)["drift"]["versions"]["lr v2"]["x"]
    assert (same["reference_n"], same["current_n"], same["ks_flagged"]) == (1_000, 100, False)
    assert "no training window known" in same["reference_source"]


def test_a_dashboard_report_the_metrics_topic_refuses_is_counted_and_linking_goes_on(tmp_path):
    settings = dataclasses.replace(Settings.from_env(), bootstrap_servers="127.0.0.1:9", state_dir=tmp_path)
    linkage = LinkageSettings(config="febrl", app_id="linker-under-test", web_port=19599)
    linker = LinkerApp(settings, linkage, *load_config(linkage.config, settings))

    class Refusing:
        def write(self, record):
            raise MetricsDeliveryError("the metrics topic is not there")

    linker.tracker.sink = Refusing()
    asyncio.run(linker.report())  # nothing sampled yet: nothing to report
    linker.history.sample(1.0, {"links_out": 1}, {}, entities=1, model_fits=0, quality=None)
    asyncio.run(linker.report())
    assert linker.counters["reports_failed"] == 1
