"""The registry's rules, deploy checks, snapshots, and what sampling and class weights do to a rare class."""

from __future__ import annotations

import random

import pytest

from mlstream.registry.control import DeployRefused, check_deployable
from mlstream.registry.records import Build, Deployment
from mlstream.registry.registry import MemoryMetadataLog, Registry, RegistryError, parse_ref
from mlstream.registry.snapshots import SnapshotError, load_snapshot, save_snapshot
from mlstream.registry.training import train_examples
from mlstream.scoring.model_store import FolderModelStore


def test_builds_versions_and_refs():
    registry = Registry(MemoryMetadataLog())
    registry.add_build(Build("m", "1", "logistic_regression"))
    registry.add_build(Build("m", "2", "logistic_regression", parent="1"))
    assert registry.next_version("m") == "3" and registry.next_version("other") == "1"
    assert registry.build("crn:mlstream:ml:local:model/m/build/2").parent == "1"
    assert parse_ref("m/2") == ("m", "2")
    with pytest.raises(RegistryError, match="exists already"):
        registry.add_build(Build("m", "1", "hoeffding_tree"))
    with pytest.raises(RegistryError, match="known builds of m: 1, 2"):
        registry.build("m/7")


def test_the_registry_is_rebuilt_from_its_log_alone():
    log = MemoryMetadataLog()
    first = Registry(log)
    first.add_build(Build("m", "1", "logistic_regression"))
    first.add_build(Build("m", "2", "logistic_regression"))
    first.record_deployment(first.build("m/1"), "app", "champion", 1000, "c1")
    first.record_deployment(first.build("m/2"), "app", "champion", 2000, "c2", auto_rollback=True)
    second = Registry(log)
    serving = second.serving("app")
    assert (serving.build_version, serving.since_ms, serving.previous_version(), serving.auto_rollback) == \
        ("2", 2000, "1", True)
    assert serving.history == [{"build_version": "1", "since_ms": 1000, "until_ms": 2000, "rolled_back": False}]


def test_a_serving_build_cannot_be_retired():
    registry = Registry(MemoryMetadataLog())
    registry.add_build(Build("m", "1", "logistic_regression"))
    registry.add_build(Build("m", "2", "logistic_regression"))
    registry.record_deployment(registry.build("m/2"), "app", "champion", 1, "c")
    with pytest.raises(RegistryError, match="serves app"):
        registry.retire("m/2")
    assert registry.retire("m/1").status == "retired"
    with pytest.raises(DeployRefused, match="retired"):
        check_deployable(registry.build("m/1").to_dict() | {"ref": "m/1"}, None)


def test_rollback_goes_to_the_build_before_the_current_one_never_to_a_rolled_back_one():
    d = Deployment("m", "app", "champion", "1", 0)
    d = d.replaced_by("2", 10, "c2", False).replaced_by("3", 20, "c3", False)
    assert d.previous_version() == "2"
    back = d.replaced_by("2", 30, "c4", False, rollback=True)  # 3 was bad
    assert back.previous_version() == "1"
    assert d.replaced_by("2", 30, "c4", False).previous_version() == "3"  # a plain deploy of 2: 3 is fine


def test_each_command_is_recorded_once_whoever_records_it():
    log = MemoryMetadataLog()
    a, b = Registry(log), Registry(log)
    a.add_build(Build("m", "1", "logistic_regression"))
    a.add_build(Build("m", "2", "logistic_regression"))
    a.record_deployment(a.build("m/1"), "app", "champion", 1, "c1")
    for instance in (a, b):  # two app instances applied the same command
        instance.refresh().record_deployment(instance.build("m/2"), "app", "champion", 2, "c2")
    assert len(Registry(log).serving("app").history) == 1


def test_missing_and_corrupt_snapshots_are_refused(tmp_path):
    store = FolderModelStore(tmp_path)
    key, digest = save_snapshot(store, "m", "1", {"w": 1})
    assert load_snapshot(store, key, digest) == {"w": 1}
    with pytest.raises(SnapshotError, match="missing"):
        load_snapshot(store, "snapshots/m/9/estimator.pkl", digest)
    (tmp_path / key).write_bytes(b"\x80garbage")
    with pytest.raises(SnapshotError, match="corrupt"):
        load_snapshot(store, key, digest)


def fraud_like(n: int, seed: int, rate: float = 0.03) -> list:
    """A rare positive class, shifted on two of four features."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        fraud = rng.random() < rate
        x = {f"f{k}": rng.gauss(0.8 if fraud and k < 2 else 0.0, 1.0) for k in range(4)}
        out.append((str(i), x, fraud))
    return out


@pytest.mark.parametrize("settings", [
    {"class_weight": {"True": 15.0}},
    {"sampling": {"method": "under", "desired_dist": {"True": 0.5, "False": 0.5}, "seed": 1}},
    {"sampling": {"method": "over", "desired_dist": {"True": 0.5, "False": 0.5}, "seed": 1}},
])
def test_sampling_and_class_weights_raise_the_recall_of_the_rare_class(settings):
    train, test = fraud_like(4000, 1), fraud_like(2000, 2)
    run = lambda s: train_examples("logistic_regression", {}, s.get("sampling", {}), s.get("class_weight", {}),  # noqa: E731
                                   0, train, {"test": test}, [x for _, x, _ in test[:50]])[1]["test"]
    plain, balanced = run({}), run(settings)
    assert plain["classes"]["True"]["recall"] < 0.1  # the plain model nearly never says fraud
    assert balanced["classes"]["True"]["recall"] > plain["classes"]["True"]["recall"] + 0.3
    assert balanced["accuracy"] < plain["accuracy"]  # the cost: more false alarms


def test_training_is_deterministic_for_the_same_data_and_seed():
    train, test = fraud_like(1000, 3), fraud_like(300, 4)
    settings = ({"method": "under", "desired_dist": {"True": 0.3, "False": 0.7}, "seed": 5}, {"True": 2.0})
    a = train_examples("hoeffding_tree", {}, *settings, 5, train, {"test": test}, [x for _, x, _ in test])
    b = train_examples("hoeffding_tree", {}, *settings, 5, train, {"test": test}, [x for _, x, _ in test])
    assert a[2] == b[2] and a[1] == b[1]
    c = train_examples("hoeffding_tree", {}, settings[0] | {"seed": 6}, settings[1], 5, train, {"test": test},
                       [x for _, x, _ in test])
    assert c[2] != a[2]  # the seed matters, so recording it matters


def test_build_settings_from_a_config():
    from mlstream.errors import UserError
    from mlstream.registry.training import build_settings_from_yaml

    got = build_settings_from_yaml("spec: hoeffding_tree\nsampling: {method: under, desired_dist: {1: 0.5, 0: 0.5}}\n"
                                   "seed: 3\n", "config c v1")
    assert got == {"spec": "hoeffding_tree", "sampling": {"method": "under", "desired_dist": {"1": 0.5, "0": 0.5}},
                   "seed": 3}
    with pytest.raises(UserError, match="config c v2: .*unknown: learning_rate"):
        build_settings_from_yaml("learning_rate: 0.1\n", "config c v2")
