"""The S3 model store against a real S3-compatible server: S3Proxy, fetched and started by infra/s3proxy/s3proxy.sh."""

from __future__ import annotations

import os
import uuid

import pytest

from mlstream.scoring.model_store import CorruptCheckpoint, S3ModelStore, open_model_store
from tests.conftest import infra_script

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def s3_endpoint() -> str:
    endpoint = infra_script("s3proxy/s3proxy.sh", 300)
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "mlstream")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "mlstream-local-secret")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    return endpoint


def test_objects_and_checkpoints_round_trip(s3_endpoint):
    store = open_model_store(f"s3://test-{uuid.uuid4().hex[:8]}/models", "unused", s3_endpoint)
    assert isinstance(store, S3ModelStore)
    assert store.get("snapshots/m/1.pkl") is None
    store.put("snapshots/m/1.pkl", b"\x00snapshot bytes")
    assert store.get("snapshots/m/1.pkl") == b"\x00snapshot bytes"
    store.put("snapshots/m/1.pkl", b"replaced")
    assert store.get("snapshots/m/1.pkl") == b"replaced"

    from models import build

    estimator = build("logistic_regression")
    estimator.learn_one({"x": 1.0}, True)
    store.save("m", "1", {"estimator": estimator, "n_learned": 1})
    loaded = store.load("m", "1")
    assert loaded["n_learned"] == 1
    assert loaded["estimator"].predict_proba_one({"x": 1.0}) == estimator.predict_proba_one({"x": 1.0})
    assert store.location("m/1/checkpoint.pkl").startswith("s3://")


def test_a_corrupt_checkpoint_is_named(s3_endpoint):
    store = open_model_store(f"s3://test-{uuid.uuid4().hex[:8]}", "unused", s3_endpoint)
    store.put("m/1/checkpoint.pkl", b"not a pickle")
    with pytest.raises(CorruptCheckpoint, match="s3://"):
        store.load("m", "1")


def test_a_build_snapshot_lives_in_s3_and_a_tampered_one_is_refused(s3_endpoint, services, tmp_path):
    from mlstream.registry.metadata_log import open_registry
    from mlstream.registry.snapshots import SnapshotError, load_snapshot
    from mlstream.registry.training import train_build
    from mlstream.kafka.topics import init
    from producers.datasets import examples, source_name
    from producers.feed import KafkaFeedSink, play
    from tests.conftest import isolated_settings

    settings = isolated_settings(services, tmp_path / "state")
    init(settings, say=lambda line: None)
    play(examples("phishing"), KafkaFeedSink(settings), dataset="phishing", source=source_name("phishing"),
         label_delay_s=0.0, limit=300, progress=lambda line: None)
    store = open_model_store(f"s3://test-{uuid.uuid4().hex[:8]}/models", "unused", s3_endpoint)
    build = train_build(settings, open_registry(settings), store, model="phish", spec="logistic_regression",
                        say=lambda line: None)
    assert build.snapshot.startswith("s3://") and build.snapshot.endswith(build.snapshot_key)
    estimator = load_snapshot(store, build.snapshot_key, build.snapshot_sha256)
    assert estimator.predict_one({"https": 1.0}) in (True, False)
    store.put(build.snapshot_key, store.get(build.snapshot_key)[:-1])
    with pytest.raises(SnapshotError, match="corrupt"):
        load_snapshot(store, build.snapshot_key, build.snapshot_sha256)


def test_the_app_serves_a_build_from_s3_and_checkpoints_there(s3_endpoint, services, tmp_path):
    import dataclasses

    from tools.demo import app_stats, start_app, stop_app, wait_for, wait_for_app
    from mlstream.registry.control import ControlChannel, deploy_command
    from mlstream.registry.metadata_log import open_registry
    from mlstream.registry.training import train_build
    from mlstream.kafka.topics import init
    from producers.datasets import examples, source_name
    from producers.feed import KafkaFeedSink, play
    from tests.conftest import isolated_settings

    url = f"s3://test-{uuid.uuid4().hex[:8]}/models"
    settings = dataclasses.replace(isolated_settings(services, tmp_path / "state"), model_store=url,
                                   s3_endpoint_url=s3_endpoint, prediction_metrics=False)
    init(settings, say=lambda line: None)
    feed = lambda n, seed: play(examples("phishing"), KafkaFeedSink(settings), dataset="phishing",  # noqa: E731
                                source=source_name("phishing"), seed=seed, label_delay_s=0.0, limit=n,
                                progress=lambda line: None)
    feed(300, 1)
    store = open_model_store(url, "unused", s3_endpoint)
    train_build(settings, open_registry(settings), store, model="phish", spec="logistic_regression",
                say=lambda line: None)
    log = tmp_path / "app.log"
    process = start_app(settings, log)
    try:
        wait_for_app(settings, process, log)
        answer = ControlChannel(settings).request(deploy_command(settings.app_id, "phish", "1"))
        assert answer["result"] == "applied", answer
        feed(100, 2)
        wait_for(lambda: app_stats(settings)["model"]["n_learned"] >= 100, 60, "phish/1 learning online")
    finally:
        stop_app(process)
    # The shutdown export went to S3: partition 0's model, with its share of the 100 labels (each
    # partition learns its own model; the exactly-once state itself is in the state changelog).
    assert 0 < store.load("phish", "1")["n_learned"] < 100
