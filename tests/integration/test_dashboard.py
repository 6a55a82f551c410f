"""The live dashboards (the scorer's, the linkage app's) in a real headless Chromium (Debian's package)
while a stream runs.

The page is loaded twice during the feed: once for its DOM after the scripts
ran (``--dump-dom``), once for a screenshot kept in ``test-artifacts/``.
"""

from __future__ import annotations

import dataclasses
import re
import subprocess
import threading
import time

import pytest
import requests

from linkage.datasets import load_febrl
from tools.demo import app_stats, start_app, stop_app, wait_for, wait_for_app
from mlstream.settings import REPO_ROOT
from mlstream.kafka.clients import registry_client
from mlstream.kafka.topics import init
from producers.datasets import examples, source_name
from producers.feed import KafkaFeedSink, play
from producers.linkage_feed import KafkaLinkageSink, play_records
from tools.bench.linkage_eval import Run
from apps.history import ms_ago, read_reports
from apps.scorer.app import METRICS_INTERVAL_S
from mlstream.registry.control import ROLLBACK, ControlChannel, deploy_command
from mlstream.registry.metadata_log import open_registry
from mlstream.registry.training import train_build
from mlstream.scoring.model_store import FolderModelStore
from apps.linker.settings import LinkageSettings
from tests.conftest import free_port, infra_script

pytestmark = pytest.mark.integration
ARTIFACTS = REPO_ROOT / "test-artifacts"
CHARTS = ("chart-throughput", "chart-latency", "chart-quality", "chart-coverage", "chart-predictions")


@pytest.fixture(scope="module")
def chromium():
    return infra_script("chromium.sh", 900)


class FeedStopped(Exception):
    pass


class StoppableSink:
    """A feed sink that ends the feed (by raising) once ``stop`` is set."""

    def __init__(self, sink, stop: threading.Event):
        self.sink, self.stop = sink, stop

    def send_record(self, record: dict) -> None:
        if self.stop.is_set():
            raise FeedStopped()
        self.sink.send_record(record)

    def send_label(self, label: dict) -> None:
        self.sink.send_label(label)

    def flush(self) -> None:
        self.sink.flush()


def run_chromium(chromium: str, profile, *args: str) -> subprocess.CompletedProcess:
    command = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
               "--window-size=1400,2000", "--virtual-time-budget=6000", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def look_at(chromium: str, tmp_path, url: str, screenshot_name: str):
    """The page's DOM after its scripts ran, and a screenshot of it kept in test-artifacts/."""
    dom = run_chromium(chromium, tmp_path / "profile-dom", "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / screenshot_name
    shot = run_chromium(chromium, tmp_path / "profile-shot", f"--screenshot={screenshot}", url)
    assert shot.returncode == 0, shot.stderr[-2000:]
    return dom.stdout, screenshot


def chart_points(html: str, chart: str) -> int:
    match = re.search(rf'id="{chart}"[^>]*data-points="(\d+)"', html) or \
        re.search(rf'data-points="(\d+)"[^>]*id="{chart}"', html)
    assert match, f"{chart} not found in the rendered page"
    return int(match.group(1))


def chart_attribute(html: str, chart: str, name: str) -> str:
    match = re.search(rf'<div[^>]*id="{chart}"[^>]*>', html)
    assert match, f"{chart} not found in the rendered page"
    found = re.search(rf'data-{name}="([^"]*)"', match.group(0))
    assert found, f"{chart} has no data-{name}"
    return found.group(1)


def test_the_dashboard_draws_history_threshold_deploys_and_drift_and_keeps_them_across_a_restart(
        services, isolated, chromium, tmp_path):
    settings = dataclasses.replace(isolated, drift_features=("0", "1"), prediction_metrics=False)
    init(settings, say=lambda _: None)
    # Two builds trained from records already on the topics, so a hot deploy has something to swap in.
    play(examples("sea-drift"), KafkaFeedSink(settings), dataset="sea-drift", source=source_name("sea-drift"),
         rate=0, label_delay_s=0, limit=600, progress=lambda _: None)
    registry = open_registry(settings)
    store = FolderModelStore(settings.state_dir / "models")
    for _ in range(2):
        train_build(settings, registry, store, model="sea", spec="logistic_regression", say=lambda _: None)
    control = ControlChannel(settings)
    log_path = settings.state_dir / "app.log"
    url = f"http://localhost:{settings.web_port}/dashboard/"
    stop, shift = threading.Event(), threading.Event()
    feed = threading.Thread(target=endless_feed, args=(settings, stop, shift), daemon=True)
    app = start_app(settings, log_path)
    try:
        wait_for_app(settings, app, log_path)
        assert control.request(deploy_command(settings.app_id, "sea", "1"))["result"] == "applied"
        feed.start()  # paced and endless: the stream still runs while the browser looks
        wait_for(lambda: (app_stats(settings) or {"counters": {"labels_in": 0}})["counters"]["labels_in"] > 900, 120,
                 "labels to arrive")
        assert control.request(deploy_command(settings.app_id, "sea", "2"))["result"] == "applied"
        wait_for(lambda: (app_stats(settings) or {"versions": {}})["versions"].get("sea v2", {}).get(
            "records_learned", 0) > 300, 120, "sea v2 to learn")
        shift.set()  # feature 0 moves away from what sea v2 was trained on; feature 1 stays
        wait_for(lambda: drift_of(url, "sea v2", "0")["page_hinkley_at_ms"] and drift_of(url, "sea v2", "0")[
            "ks_flagged"], 120, "the drift of feature 0 to be flagged")
        time.sleep(METRICS_INTERVAL_S + 1)  # a report of sea v2 on the metrics topic, for after the restart
        live, screenshot = look_at(chromium, tmp_path, url, "dashboard.png")
        counts = requests.get(f"{url}data.json", timeout=5).json()["predictions"]
        assert feed.is_alive(), "the feed ended before the browser looked: the stream must still run"
    finally:
        stop_app(app)
    restarted_at = time.time()

    for chart in CHARTS + ("chart-drift-0", "chart-drift-1"):
        assert chart_points(live, chart) > 0, f"{chart} holds no data"
    assert chart_attribute(live, "chart-quality", "threshold") == "0.7"  # the alert threshold, drawn
    assert int(chart_attribute(live, "chart-quality", "markers")) >= 2  # sea v1 and sea v2 deployed
    assert "sea v2 deployed" in live and "sea v2 rolling_accuracy" in live
    assert "training window of sea v2" in live  # the drift panel's reference is the build's training data
    drifted = re.search(r'<div class="card" id="drift-card-\d+" data-flagged="true"><h2>0 \(sea v2\) <span '
                        r'class="flagged">drift: KS test p = [^;]+; PageHinkley fired at', live)
    assert drifted, "feature 0's panel is not flagged by both tests"
    assert re.search(r'<tr class="alert-FEATURE_DRIFT"><td>[0-9:]+</td><td>sea v2</td>', live)
    assert "predictions sent in the last minute" in live and "records in since the app started" in live
    assert screenshot.stat().st_size > 10_000
    # The count is of every prediction sent, not of those the chart keeps (at most 2,000).
    assert counts["sent_last_minute"] >= counts["shown"] > 0 and counts["shown"] <= counts["kept_at_most"]

    app = start_app(settings, log_path)
    try:
        wait_for_app(settings, app, log_path)
        wait_for(lambda: requests.get(f"{url}data.json", timeout=5).json()["restored"]["done"], 120,
                 "the history to be read back")
        restored = requests.get(f"{url}data.json?window=3600", timeout=5).json()
        # What 'mlstream models rollback' sends: a deploy of the build before, marked as a rollback.
        assert control.request(deploy_command(settings.app_id, "sea", "1", reason=ROLLBACK))["result"] == "applied"
        after, _ = look_at(chromium, tmp_path, f"{url}?window=3600", "dashboard-after-restart.png")
    finally:
        stop.set()
        stop_app(app)
    assert restored["restored"]["error"] is None and restored["restored"]["samples"] >= 3, restored["restored"]
    # The charts start before the restart, from the reports the first process left on the metrics topic.
    assert float(chart_attribute(after, "chart-quality", "first")) < restarted_at - METRICS_INTERVAL_S
    assert chart_points(after, "chart-quality") > 0 and "sea v2 deployed" in after
    assert '<li class="marker-rollback">' in after and "rolled back to sea v1" in after
    assert int(chart_attribute(after, "chart-quality", "markers")) >= 4  # 2 deploys, a restart, the rollback
    assert 'class="chosen">1 h<' in after


def endless_feed(settings, stop: threading.Event, shift: threading.Event) -> None:
    """SEA records until ``stop``; once ``shift`` is set, feature 0 is 10 higher (labels as before)."""
    def shifted():
        for features, label in examples("sea-drift", seed=7):
            yield (features | {"0": features["0"] + 10} if shift.is_set() else features), label

    try:
        play(shifted(), StoppableSink(KafkaFeedSink(settings), stop), dataset="sea-drift",
             source=source_name("sea-drift"), rate=100, label_delay_s=0.5, progress=lambda _: None)
    except FeedStopped:
        pass


def drift_of(url: str, version: str, feature: str) -> dict:
    views = requests.get(f"{url}data.json", timeout=5).json()["drift"]["versions"]
    return views.get(version, {}).get(feature, {"page_hinkley_at_ms": None, "ks_flagged": False})


LINKAGE_CHARTS = ("chart-throughput", "chart-latency", "chart-quality", "chart-entities")


def test_the_linkage_dashboard_draws_live_quality_while_records_arrive_and_keeps_it_across_a_restart(
        services, isolated, chromium, tmp_path):
    init(isolated, say=lambda _: None)
    linkage = LinkageSettings(config="febrl", app_id=f"{isolated.app_id}-linkage", web_port=free_port())
    run = Run(isolated, linkage, isolated.state_dir / "linkage.log")
    url = f"http://localhost:{linkage.web_port}/dashboard/"
    data = load_febrl("febrl4")
    stop = threading.Event()
    process = run.start_app()
    try:
        run.wait_until(process, 0, 120, lambda _: None)

        def run_feed():  # paced, so the stream still runs while the browser looks
            sink = KafkaLinkageSink(isolated)
            for start in range(0, len(data.records), 100):
                if stop.is_set():
                    return
                play_records(data.records[start:start + 100], sink, rate=400, progress=lambda _: None)

        feed = threading.Thread(target=run_feed, daemon=True)
        feed.start()
        wait_for(lambda: (run.stats() or {"counters": {"links_out": 0}})["counters"]["links_out"] > 1500, 120,
                 "links to be made")
        html, screenshot = look_at(chromium, tmp_path, url, "linkage-dashboard.png")
        assert feed.is_alive(), "the feed ended before the browser looked: the stream must still run"
        # Two reports on the metrics topic, for after the restart (how many came so far depends on the load).
        registry = registry_client(isolated)
        wait_for(lambda: len(read_reports(isolated, registry, linkage.app_id, ms_ago(3600))) >= 2, 60,
                 "two dashboard reports on the metrics topic")
    finally:
        stop.set()
        stop_app(process)

    for chart in LINKAGE_CHARTS:
        assert chart_points(html, chart) > 0, f"{chart} holds no data"
    f1 = re.search(r"<b>([0-9.]+)</b><span>F1</span>", html)
    assert f1 and float(f1.group(1)) > 0.99, "the live F1 is not on the page"
    assert "config febrl" in html and "link events" in html and "records in since the app started" in html
    assert screenshot.exists() and screenshot.stat().st_size > 10_000

    restarted_s = time.time()
    process = run.start_app()
    try:
        run.wait_until(process, 0, 120, lambda _: None)
        wait_for(lambda: requests.get(f"{url}data.json", timeout=5).json()["restored"]["done"], 120,
                 "the history to be read back")
        restored = requests.get(f"{url}data.json", timeout=5).json()["restored"]
        after, _ = look_at(chromium, tmp_path, f"{url}?window=3600", "linkage-dashboard-after-restart.png")
    finally:
        stop_app(process)
    assert restored["samples"] >= 2 and restored["error"] is None, restored
    # The hour's window draws one point per 10 s, so two reports within one step are one point:
    # the first point is compared with the restart, not with a report.
    for chart in LINKAGE_CHARTS:
        assert float(chart_attribute(after, chart, "first")) < restarted_s, f"{chart} does not start before the restart"
    assert "samples from before this process read back" in after
