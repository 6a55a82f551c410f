"""The live dashboards (the scorer's, the linkage app's) in a real headless Chromium (Debian's package)
while a stream runs.

The page is loaded twice during the feed: once for its DOM after the scripts
ran (``--dump-dom``), once for a screenshot kept in ``test-artifacts/``.
"""

from __future__ import annotations

import re
import subprocess
import threading

import pytest

from linkage.datasets import load_febrl
from tools.demo import app_stats, start_app, stop_app, wait_for, wait_for_app
from mlstream.settings import REPO_ROOT
from mlstream.kafka.topics import init
from producers.datasets import examples, source_name
from producers.feed import KafkaFeedSink, play
from producers.linkage_feed import KafkaLinkageSink, play_records
from tools.bench.linkage_eval import Run
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
               "--window-size=1400,1000", "--virtual-time-budget=6000", *args]
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


def test_the_dashboard_draws_live_data_while_a_stream_runs(services, isolated, chromium, tmp_path):
    init(isolated, say=lambda _: None)
    log_path = isolated.state_dir / "app.log"
    app = start_app(isolated, log_path)
    stop = threading.Event()
    try:
        wait_for_app(isolated, app, log_path)
        # An endless paced feed keeps the stream running while the browser looks, until told to stop.

        def run_feed():
            try:
                play(examples("sea-drift"), StoppableSink(KafkaFeedSink(isolated), stop), dataset="sea-drift",
                     source=source_name("sea-drift"), rate=100, label_delay_s=0.5, progress=lambda _: None)
            except FeedStopped:
                pass

        feed = threading.Thread(target=run_feed, daemon=True)
        feed.start()
        wait_for(lambda: (app_stats(isolated) or {"counters": {"labels_in": 0}})["counters"]["labels_in"] > 300,
                 120, "labels to arrive")
        html, screenshot = look_at(chromium, tmp_path, f"http://localhost:{isolated.web_port}/dashboard/",
                                   "dashboard.png")
        assert feed.is_alive(), "the feed ended before the browser looked: the stream must still run"
    finally:
        stop.set()
        stop_app(app)

    for chart in CHARTS:
        assert chart_points(html, chart) > 0, f"{chart} holds no data"
    assert "logistic_regression v1 rolling_accuracy" in html  # the quality chart's legend names the version
    assert "deploy-marker" in html
    assert "updated " in html and "records in" in html
    assert screenshot.exists() and screenshot.stat().st_size > 10_000


LINKAGE_CHARTS = ("chart-throughput", "chart-latency", "chart-quality", "chart-entities")


def test_the_linkage_dashboard_draws_live_quality_while_records_arrive(services, isolated, chromium, tmp_path):
    init(isolated, say=lambda _: None)
    linkage = LinkageSettings(config="febrl", app_id=f"{isolated.app_id}-linkage", web_port=free_port())
    run = Run(isolated, linkage, isolated.state_dir / "linkage.log")
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
        html, screenshot = look_at(chromium, tmp_path, f"http://localhost:{linkage.web_port}/dashboard/",
                                   "linkage-dashboard.png")
        assert feed.is_alive(), "the feed ended before the browser looked: the stream must still run"
    finally:
        stop.set()
        stop_app(process)

    for chart in LINKAGE_CHARTS:
        assert chart_points(html, chart) > 0, f"{chart} holds no data"
    f1 = re.search(r"<b>([0-9.]+)</b><span>F1</span>", html)
    assert f1 and float(f1.group(1)) > 0.99, "the live F1 is not on the page"
    assert "config febrl" in html and "link events" in html
    assert screenshot.exists() and screenshot.stat().st_size > 10_000
