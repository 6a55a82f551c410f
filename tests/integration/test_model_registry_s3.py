"""The S3 model store against a real S3-compatible server: S3Proxy, fetched and started by infra/s3proxy/s3proxy.sh."""

from __future__ import annotations

import os
import subprocess
import uuid

import pytest

from mlstream.model_store import CorruptCheckpoint, S3ModelStore, open_model_store
from mlstream.settings import REPO_ROOT

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def s3_endpoint() -> str:
    out = subprocess.run(["bash", str(REPO_ROOT / "infra" / "s3proxy" / "s3proxy.sh")], capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "mlstream")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "mlstream-local-secret")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    return out.stdout.strip().splitlines()[-1]


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
