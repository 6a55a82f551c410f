"""Builds from the real topics: a rebuild reproduces its original to the bit; sampling and weights are recorded."""

from __future__ import annotations

import itertools

import pytest

from mlstream.kafka.reader import read_all
from mlstream.kafka.topics import init
from mlstream.lineage.hook import HookMessageAssembler
from mlstream.registry.metadata_log import open_registry
from mlstream.registry.snapshots import load_snapshot
from mlstream.registry.training import rebuild, train_build
from mlstream.scoring.model_store import FolderModelStore
from producers.datasets import examples, source_name
from producers.feed import KafkaFeedSink, play
from tests.conftest import isolated_settings

pytestmark = pytest.mark.integration
quiet = lambda line: None  # noqa: E731


@pytest.fixture(scope="module")
def topics_with_data(services, tmp_path_factory):
    settings = isolated_settings(services, tmp_path_factory.mktemp("builds") / "state")
    init(settings, say=quiet)
    play(examples("phishing"), KafkaFeedSink(settings), dataset="phishing", source=source_name("phishing"),
         label_delay_s=0.0, limit=800, progress=quiet)
    return settings, open_registry(settings), FolderModelStore(settings.state_dir / "models")


def test_a_rebuild_predicts_exactly_like_its_original(topics_with_data):
    settings, registry, store = topics_with_data
    original = train_build(settings, registry, store, model="phish", spec="hoeffding_tree",
                           sampling={"method": "over", "desired_dist": {"True": 0.5, "False": 0.5}, "seed": 3},
                           class_weight={"True": 2.0}, seed=3, say=quiet)
    assert original.data["splits"][0]["records"], "the build records the offset ranges it read"
    assert original.code_version and original.sampling["method"] == "over"

    produce_more = play(examples("phishing"), KafkaFeedSink(settings), dataset="phishing", seed=7,
                        source=source_name("phishing"), label_delay_s=0.0, limit=200, progress=quiet)
    assert produce_more.records == 200  # new data on the topics must not leak into the rebuild

    _, again, identical = rebuild(settings, registry, store, original.ref, say=quiet)
    assert identical and again.probe_sha256 == original.probe_sha256
    assert again.parent == original.version and again.data["splits"] == original.data["splits"]
    assert again.examples_learned == original.examples_learned
    a = load_snapshot(store, original.snapshot_key, original.snapshot_sha256)
    b = load_snapshot(store, again.snapshot_key, again.snapshot_sha256)
    probe = [x for x, _ in itertools.islice(examples("phishing"), 300)]
    assert [a.predict_proba_one(x) for x in probe] == [b.predict_proba_one(x) for x in probe]


def test_a_rebuild_with_a_fix_is_a_new_build_on_the_same_data(topics_with_data):
    settings, registry, store = topics_with_data
    original = train_build(settings, registry, store, model="fixme", spec="logistic_regression",
                           class_weight={"True": 50.0}, say=quiet)
    original, fixed, identical = rebuild(settings, registry, store, original.ref, {"class_weight": {}}, say=quiet)
    assert not identical
    assert fixed.class_weight == {} and fixed.data["splits"] == original.data["splits"]
    assert fixed.metrics["test"]["accuracy"] > original.metrics["test"]["accuracy"]


def test_the_build_lineage_carries_its_sampling_and_weights(topics_with_data):
    settings, registry, store = topics_with_data
    build = train_build(settings, registry, store, model="weighted", spec="logistic_regression",
                        sampling={"method": "under", "desired_dist": {"True": 0.4, "False": 0.6}, "seed": 9},
                        class_weight={"True": 2.0}, seed=9, say=quiet)
    assembler = HookMessageAssembler()
    entities = [e for m in read_all(settings, settings.topics.atlas_hook)
                for envelope in assembler.add(m.value())
                for e in [*envelope["message"]["entities"]["entities"],
                          *envelope["message"]["entities"].get("referredEntities", {}).values()]]
    mine = [e for e in entities if e["typeName"] == "ml_model_build"
            and e["attributes"]["qualifiedName"].startswith(build.crn)]
    assert mine, "no ml_model_build lineage for the build"
    metadata = mine[-1]["attributes"]["metadata"]
    assert metadata["sampling.method"] == "under" and "'True': 2.0" in metadata["sampling.class_weight"]
    assert metadata["sampling.seed"] == "9"
