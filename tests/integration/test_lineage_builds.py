"""A build's exact offset ranges: train, reproduce byte for byte after the topic grew; the demo's build is a
registry build that can be shown and deployed."""

from __future__ import annotations

import dataclasses
import json
import time

import pytest

from apps.lineage_service.service import LineageService
from mlstream.identifiers import build_crn
from mlstream.kafka.reader import read_range
from mlstream.kafka.topics import init
from mlstream.registry.control import check_deployable
from mlstream.registry.manifest import BuildManifest, frames
from mlstream.registry.records import Build
from mlstream.registry.snapshots import load_snapshot
from mlstream.registry.training import manifest_of
from mlstream.scoring.model_store import FolderModelStore
from producers.datasets import examples, source_name
from producers.feed import KafkaFeedSink, play
from tests.conftest import free_port
from tools import lineage_demo
from tools.cli import main
from tools.lineage_views import atlas_client, find_entity

pytestmark = pytest.mark.integration
quiet = lambda line: None  # noqa: E731


def feed(settings, n: int, seed: int) -> None:
    play(examples("sea-drift", seed=seed), KafkaFeedSink(settings), dataset="sea-drift",
         source=source_name("sea-drift"), seed=seed, label_delay_s=0.0, limit=n, progress=lambda line: None)


@pytest.fixture
def with_lineage(isolated, tmp_path, monkeypatch):
    """Settings of one test with its own lineage service, also as the environment the CLI reads."""
    settings = dataclasses.replace(isolated, lineage_port=free_port())
    for name, value in settings.to_env().items():
        monkeypatch.setenv(name, value)
    init(settings, say=quiet)
    service = LineageService(settings, database=str(tmp_path / "lineage.db")).start()
    yield settings
    service.stop()


def manifest_in_lineage(settings, build: str) -> BuildManifest:
    """The manifest an ml_model_build's lineage carries, once the lineage service has applied it."""
    client = atlas_client(settings)
    deadline = time.monotonic() + 30
    while True:
        try:
            return BuildManifest.from_json(find_entity(client, build, settings.atlas_namespace)
                                           ["attributes"]["metadata"]["manifest"])
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def test_build_is_retraced_and_reproduced_byte_for_byte(with_lineage, tmp_path, capsys):
    settings = with_lineage
    feed(settings, 300, seed=1)
    assert main(["models", "build", "sea", "--spec", "logistic_regression", "--json"]) == 0
    manifest = manifest_of(Build.from_dict(json.loads(capsys.readouterr().out)))
    assert [s.name for s in manifest.splits] == ["train", "validation", "test"]
    assert sum(s.examples for s in manifest.splits) == 300
    assert manifest.schema_versions == {f"{settings.topics.records}-value": [1],
                                        f"{settings.topics.labels}-value": [1]}
    assert manifest.code_version != "unknown" and set(manifest.metrics) == {"validation_accuracy", "test_accuracy"}
    # Ranges are consecutive and cover each partition once.
    for partition in {r.partition for s in manifest.splits for r in s.records}:
        ranges = [r for s in manifest.splits for r in s.records if r.partition == partition]
        assert all(a.end == b.start for a, b in zip(ranges, ranges[1:]))

    feed(settings, 100, seed=2)  # the topics move on; the build's ranges do not

    assert manifest_in_lineage(settings, "sea/1") == manifest  # the lineage carries what the registry keeps
    out = tmp_path / "out"
    assert main(["lineage", "reproduce", "sea/1", "--out", str(out)]) == 0  # from the registry's build
    assert "every split reproduced byte for byte" in capsys.readouterr().out
    assert BuildManifest.from_json((out / "manifest.json").read_text()) == manifest

    train = manifest.split("train")
    raw = []
    for r in train.records:
        raw += read_range(settings, r.topic, {r.partition: r.start}, {r.partition: r.end})
    assert (out / "train" / "records.bin").read_bytes() == frames([m.value() for m in raw])
    assert len((out / "train" / "order.txt").read_text().splitlines()) == train.examples

    client = atlas_client(settings)
    build = client.entity.get_entity_by_attribute(
        "ml_model_build", {"qualifiedName": "crn:mlstream:ml:local:model/sea/build/1"}).entity
    upstream = client.lineage.get_lineage_info(build.guid, "INPUT", 1)
    names = {h.attributes["qualifiedName"] for h in upstream.guidEntityMap.values()}
    assert {f"{settings.topics.records}@primary", f"{settings.topics.labels}@primary"} <= names


def test_the_demo_build_is_a_registry_build_that_can_be_shown_and_deployed(with_lineage, tmp_path, monkeypatch,
                                                                           capsys):
    store_dir = tmp_path / "model-store"  # MLSTREAM_MODEL_STORE, not the state dir's default
    settings = dataclasses.replace(with_lineage, model_store=str(store_dir))
    monkeypatch.setenv("MLSTREAM_MODEL_STORE", str(store_dir))
    feed(settings, 200, seed=3)

    build = lineage_demo.train_demo_build(settings, say=quiet)  # what the demo's last step trains
    # The app's online model goes by MLSTREAM_MODEL_VERSION (1): the demo's build comes after it.
    assert build.ref == f"{settings.model}/2"
    assert sum(s["examples"] for s in build.data["splits"]) == 200

    assert main(["models", "show", build.ref]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["crn"] == build_crn(settings.model, "2") and shown["spec"] == settings.model
    assert shown["snapshot"].startswith(str(store_dir))
    assert load_snapshot(FolderModelStore(store_dir), shown["snapshot_key"], shown["snapshot_sha256"]) is not None
    check_deployable(shown | {"ref": build.ref}, None)  # what 'models deploy' checks first
    assert main(["models", "list", "--model", settings.model]) == 0
    assert capsys.readouterr().out.startswith(f"{settings.model}/2 ")
