"""The Schema Registry down at start and during a run: the app waits and goes on; `mlstream produce` says so.

The registry is reached through a forwarder the test stops and starts (tests/tcp_proxy.py):
to the app that is the registry going down and coming back, while the session's registry
keeps serving everything else. Before, the app crashed within 30 s of starting with the
registry down (a ConnectError in the report timer), and `mlstream produce` ended in a traceback.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time
from urllib.parse import urlparse

import pytest
import requests
from confluent_kafka import Producer

from mlstream.kafka.reader import read_all
from mlstream.kafka.clients import registry_client
from mlstream.kafka.serde import TopicCodec, UndecodableValue, epoch_ms
from mlstream.kafka.topics import init
from producers.datasets import examples
from producers.feed import KafkaFeedSink
from tests.conftest import isolated_settings
from tests.tcp_proxy import TcpProxy
from tools.demo import app_stats, start_app, stop_app, wait_for

pytestmark = pytest.mark.integration

FIRST, SECOND = 100, 50
OUTAGE_S = 12  # more than two ticks of the report timer (5 s), where the outage crashed the app


def feed(settings, examples_, start: int) -> None:
    sink = KafkaFeedSink(settings)
    now = int(time.time() * 1000)
    for i, (x, y) in enumerate(examples_, start=start):
        sink.send_record({"id": f"r{i}", "source": "test", "event_time": now, "features": x})
        sink.send_label({"id": f"r{i}", "label": y, "event_time": now})
    sink.flush()


def ride_out_the_outage(settings, app, log_path) -> list[float]:
    """Watch the app for OUTAGE_S: it stays up and /stats/ keeps answering; return each answer's time."""
    answers = []
    deadline = time.monotonic() + OUTAGE_S
    while time.monotonic() < deadline:
        assert app.poll() is None, f"the app died during the outage; see {log_path}"
        asked = time.monotonic()
        response = requests.get(f"http://127.0.0.1:{settings.web_port}/stats/", timeout=10)
        assert response.ok
        answers.append(time.monotonic() - asked)
        time.sleep(1)
    return answers


@pytest.fixture(scope="module")
def outage_run(services, tmp_path_factory):
    direct = isolated_settings(services, tmp_path_factory.mktemp("state"))
    init(direct, say=lambda _: None)
    registry = urlparse(direct.schema_registry_url)
    proxy = TcpProxy(registry.hostname, registry.port)
    app_settings = dataclasses.replace(direct, schema_registry_url=direct.schema_registry_url.replace(
        f"{registry.hostname}:{registry.port}", f"127.0.0.1:{proxy.port}", 1))
    data = list(examples("phishing"))[:FIRST + SECOND]
    produce = subprocess.run([sys.executable, "-m", "tools", "produce", "--dataset", "phishing", "--records", "5",
                              "--rate", "0"], env=os.environ | app_settings.to_env(), capture_output=True, text=True,
                             timeout=120)
    log_path = direct.state_dir / "app.log"
    app = start_app(app_settings, log_path)  # the registry is down
    try:
        # Not wait_for_app: the data plane joins its group once the registry answers; /stats/ answers before.
        wait_for(lambda: app.poll() is None and app_stats(app_settings), 120, f"the app's /stats/ (see {log_path})")
        started_ms = int(time.time() * 1000)
        feed(direct, data[:FIRST], 0)
        at_start = ride_out_the_outage(app_settings, app, log_path)
        before_registry = app_stats(app_settings)
        proxy.start()
        wait_for(lambda: (app_stats(app_settings) or {}).get("model", {}).get("n_learned") == FIRST, 120,
                 f"the app to score and learn the first {FIRST} records once the registry is back (see {log_path})")
        back_ms = int(time.time() * 1000)

        proxy.stop()
        feed(direct, data[FIRST:], FIRST)
        schema_id = 7_777_777  # the app must ask the registry about it, and cannot
        producer = Producer({"bootstrap.servers": direct.bootstrap_servers})
        producer.produce(direct.topics.records, key=b"unknown-schema",
                         value=b"\x00" + schema_id.to_bytes(4, "big") + b"\x02a")
        producer.flush(10)
        during_run = ride_out_the_outage(app_settings, app, log_path)
        proxy.start()
        back_again_ms = int(time.time() * 1000)
        total = FIRST + SECOND
        stats = wait_for(lambda: (s := app_stats(app_settings)) and s["model"]["n_learned"] == total
                         and s["counters"]["dead_letters"] == 1 and s, 120,
                         f"the app to catch up after the second outage (see {log_path})")
        time.sleep(6)  # one more report
    finally:
        stop_app(app)
        proxy.stop()
    return {"settings": direct, "produce": produce, "at_start": at_start, "during_run": during_run,
            "before_registry": before_registry, "stats": stats, "started_ms": started_ms, "back_ms": back_ms,
            "back_again_ms": back_again_ms, "returncode": app.returncode, "log": log_path}


def test_produce_with_the_registry_down_is_a_clear_error(outage_run):
    produce = outage_run["produce"]
    assert produce.returncode == 2
    assert "Traceback" not in produce.stderr
    assert "no Schema Registry at http://127.0.0.1:" in produce.stderr
    assert "mlstream up" in produce.stderr


def test_the_app_started_with_the_registry_down_waits_then_scores_everything(outage_run):
    assert outage_run["before_registry"]["counters"]["predictions_out"] == 0
    assert outage_run["before_registry"]["counters"]["background_failures"] == 0
    stats = outage_run["stats"]
    assert stats["counters"]["predictions_out"] == FIRST + SECOND
    assert stats["counters"]["background_failures"] == 0
    assert outage_run["returncode"] == 0


def test_stats_kept_answering_during_both_outages(outage_run):
    for answers in (outage_run["at_start"], outage_run["during_run"]):
        assert len(answers) >= OUTAGE_S // 3 and max(answers) < 2.0, answers


def test_a_message_that_needs_the_registry_waits_for_it_then_gets_its_true_reason(outage_run):
    settings = outage_run["settings"]
    codec = TopicCodec.for_topic(registry_client(settings), settings.topics.dead_letters,
                                 "dead_letter")
    letters = [codec.decode(m.value()) for m in read_all(settings, settings.topics.dead_letters)]
    assert [(letter["key"], letter["error_type"]) for letter in letters] == [
        (b"unknown-schema", UndecodableValue.UNKNOWN_SCHEMA_ID)]
    assert epoch_ms(letters[0]["failed_at"]) >= outage_run["back_again_ms"]  # it waited for the registry


def test_metrics_written_while_the_registry_was_down_reach_the_metrics_topic(outage_run):
    settings = outage_run["settings"]
    codec = TopicCodec.for_topic(registry_client(settings), settings.topics.metrics, "metric")
    metrics = [codec.decode(m.value()) for m in read_all(settings, settings.topics.metrics)]
    aggregates = [m for m in metrics if "records_scored" in m["metrics"]]
    assert any(outage_run["started_ms"] <= epoch_ms(m["end_timestamp_ms"]) < outage_run["back_ms"] - 2000
               and m["metrics"]["records_scored"] == 0 for m in aggregates), "no report from the first outage"
    assert max(m["metrics"]["records_learned"] for m in aggregates) == FIRST + SECOND
