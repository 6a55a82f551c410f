"""Hot deploy through a real `mlstream app` process: builds swap between two records, bad deploys are refused."""

from __future__ import annotations

import dataclasses
import threading
from collections import defaultdict

import pytest
import requests

from mlstream.kafka import clients
from mlstream.kafka.reader import read_all
from mlstream.kafka.serde import TopicCodec
from mlstream.kafka.topics import init
from mlstream.registry.control import ControlChannel, deploy_command
from mlstream.registry.metadata_log import open_registry
from mlstream.registry.records import Build
from mlstream.registry.training import train_build
from mlstream.scoring.model_store import FolderModelStore
from producers.datasets import examples, source_name
from producers.feed import KafkaFeedSink, play
from tests.conftest import isolated_settings
from tools.demo import app_stats, start_app, stop_app, wait_for, wait_for_app

pytestmark = pytest.mark.integration
FIRST, SECOND, AFTER = 600, 900, 60


def feed(settings, n: int, seed: int, rate: float = 0.0) -> None:
    play(examples("phishing"), KafkaFeedSink(settings), dataset="phishing", source=source_name("phishing"),
         seed=seed, rate=rate, label_delay_s=0.0, limit=n, progress=lambda line: None)


def predictions(settings) -> list[dict]:
    codec = TopicCodec.for_topic(clients.registry_client(settings), settings.topics.predictions,
                                 "prediction")
    return [codec.decode(m.value()) for m in read_all(settings, settings.topics.predictions)]


@pytest.fixture(scope="module")
def running(services, tmp_path_factory):
    settings = isolated_settings(services, tmp_path_factory.mktemp("hot") / "state")
    settings = dataclasses.replace(settings, prediction_metrics=False)
    init(settings, say=lambda line: None)
    feed(settings, FIRST, seed=1)
    registry = open_registry(settings)
    store = FolderModelStore(settings.state_dir / "models")
    quiet = lambda line: None  # noqa: E731
    train_build(settings, registry, store, model="phish", spec="logistic_regression", say=quiet)
    train_build(settings, registry, store, model="phish", spec="logistic_regression", class_weight={"True": 3.0},
                say=quiet)
    log = settings.state_dir / "app.log"
    process = start_app(settings, log)
    try:
        wait_for_app(settings, process, log)
        wait_for(lambda: len(predictions(settings)) >= FIRST, 90, "the first records scored")
        yield settings, registry, store
    finally:
        stop_app(process)


def test_swaps_between_two_records_losing_and_repeating_none(running):
    settings, registry, _ = running
    control = ControlChannel(settings)
    assert control.request(deploy_command(settings.app_id, "phish", "1"))["result"] == "applied"
    producer = threading.Thread(target=feed, args=(settings, SECOND, 2, 600.0))
    producer.start()
    wait_for(lambda: len(predictions(settings)) >= FIRST + 200, 60, "records scored by phish/1")
    answer = control.request(deploy_command(settings.app_id, "phish", "2"))  # while the feed runs
    producer.join()
    assert answer["result"] == "applied", answer
    feed(settings, AFTER, seed=4)  # phish/2 scores these whenever the swap fell
    wait_for(lambda: len(predictions(settings)) >= FIRST + SECOND + AFTER, 90, "every record scored")

    found = predictions(settings)
    by_offset = defaultdict(list)
    for p in found:
        by_offset[(p["input_partition"], p["input_offset"])].append(p)
    assert len(found) == FIRST + SECOND + AFTER, "a record was scored twice or not at all"
    assert all(len(v) == 1 for v in by_offset.values())
    # Per partition, in offset order: the app's start-up model, then phish/1, then phish/2, never interleaved.
    order = {(settings.model, settings.model_version): 0, ("phish", "1"): 1, ("phish", "2"): 2}
    seen_versions = set()
    for partition in {p for p, _ in by_offset}:
        ranks = [order[(v[0]["model_name"], v[0]["model_version"])]
                 for (p, _), v in sorted(by_offset.items()) if p == partition]
        assert ranks == sorted(ranks), f"partition {partition}: builds interleave: {ranks}"
        seen_versions |= set(ranks)
    assert seen_versions == {0, 1, 2}
    deployment = registry.refresh().serving(settings.app_id)
    assert (deployment.model, deployment.build_version, deployment.previous_version()) == ("phish", "2", "1")


def test_bad_deploys_are_refused_and_the_current_build_keeps_serving(running):
    settings, registry, store = running
    control = ControlChannel(settings)
    serving_before = app_stats(settings)["model"]

    unknown = control.request(deploy_command(settings.app_id, "phish", "99"))
    assert unknown["result"] == "refused" and "unknown build phish/99" in unknown["detail"]

    good = registry.build("phish/1")
    corrupt = registry.add_build(dataclasses.replace(good, version="50", snapshot_key="snapshots/phish/50/e.pkl"))
    store.put(corrupt.snapshot_key, b"not the snapshot")
    answer = control.request(deploy_command(settings.app_id, "phish", "50"))
    assert answer["result"] == "refused" and "corrupt" in answer["detail"]

    registry.add_build(dataclasses.replace(good, version="51", snapshot_key="snapshots/phish/51/gone.pkl"))
    answer = control.request(deploy_command(settings.app_id, "phish", "51"))
    assert answer["result"] == "refused" and "missing" in answer["detail"]

    registry.add_build(dataclasses.replace(good, version="52", features=[*good.features, "renamed_feature"]))
    answer = control.request(deploy_command(settings.app_id, "phish", "52"))
    assert answer["result"] == "refused" and "renamed_feature" in answer["detail"]

    assert app_stats(settings)["model"] == serving_before
    alerts = TopicCodec.for_topic(clients.registry_client(settings), settings.topics.alerts, "alert")
    refused = [a for a in (alerts.decode(m.value()) for m in read_all(settings,
                                                                        settings.topics.alerts))
               if a["alert_type"] == "DEPLOY_REFUSED"]
    assert len(refused) == 4
    dashboard = requests.get(f"http://localhost:{settings.web_port}/dashboard/data.json", timeout=5).json()
    assert sum(a["alert_type"] == "DEPLOY_REFUSED" for a in dashboard["alerts"]) == 4
    assert [m["version"] for m in dashboard["markers"] if m["kind"] == "deploy" and m["role"] == "champion"][:2] == \
        ["phish v1", "phish v2"]


def test_a_shadow_build_scores_beside_the_champion(running):
    settings, _, _ = running
    answer = ControlChannel(settings).request(deploy_command(settings.app_id, "phish", "1", role="shadow"))
    assert answer["result"] == "applied"
    feed(settings, 100, seed=3)
    wait_for(lambda: (app_stats(settings)["versions"].get("phish v1") or {}).get("records_scored", 0) >= 100, 60,
             "the shadow build scoring")
    assert app_stats(settings)["model"]["version"] == "2"


def test_rollback_is_one_command_and_redeploys_the_earlier_snapshot(running, monkeypatch, capsys):
    from tools.cli import main

    settings, registry, _ = running
    for name, value in settings.to_env().items():
        monkeypatch.setenv(name, value)
    assert registry.refresh().serving(settings.app_id).build_version == "2"
    assert main(["models", "rollback"]) == 0
    assert "phish/1 serves as champion (was phish/2)" in capsys.readouterr().out
    assert app_stats(settings)["model"]["version"] == "1"
    deployment = registry.refresh().serving(settings.app_id)
    assert deployment.build_version == "1" and deployment.history[-1]["rolled_back"]
    assert main(["models", "rollback"]) == 2  # phish/2 was rolled back from: nothing earlier to go to
    assert "no earlier build" in capsys.readouterr().err


def test_an_alert_on_the_serving_build_rolls_it_back_when_configured(running):
    settings, registry, _ = running
    control = ControlChannel(settings)
    assert control.request(deploy_command(settings.app_id, "phish", "2", auto_rollback=True))["result"] == "applied"
    alerts = TopicCodec.for_topic(clients.registry_client(settings), settings.topics.alerts, "alert")

    from mlstream.identifiers import build_crn, deployment_crn, model_crn
    from mlstream.scoring.scorer import now_ms

    producer = clients.producer(settings)
    # An alert as any monitor writes it (the app's own, or an external one), naming the serving build.
    producer.produce(settings.topics.alerts, alerts.encode({
        "alert_id": "test", "alert_type": "METRIC_BELOW_THRESHOLD", "model_crn": model_crn("phish"),
        "model_build_crn": build_crn("phish", "2"), "model_deployment_crn": deployment_crn("phish", settings.app_id),
        "subject": "rolling_accuracy", "detector": "threshold", "value": 0.4, "threshold": 0.7,
        "records_learned": 500, "message": "phish v2: rolling accuracy 0.400 fell below 0.700", "raised_at": now_ms()}))
    producer.flush(10)
    wait_for(lambda: app_stats(settings)["model"]["version"] == "1", 30, "the automatic rollback to phish/1")
    deployment = wait_for(lambda: (d := registry.refresh().serving(settings.app_id)).build_version == "1" and d, 30,
                          "the rollback in the registry")
    assert deployment.history[-1]["rolled_back"]
