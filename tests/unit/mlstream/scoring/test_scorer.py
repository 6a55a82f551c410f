import math
import time

import pytest

from mlstream.scoring.model_store import FolderModelStore
from models import build
from producers.datasets import examples
from mlstream.scoring.scorer import StreamScorer
from mlstream.scoring.validation import InvalidValue


def record(i, features):
    return {"id": f"r{i}", "features": features}


def test_prequential_learning_on_phishing_beats_the_majority_class(tmp_path):
    scorer = StreamScorer.restore(lambda: build("logistic_regression"), "lr", "1", FolderModelStore(tmp_path))
    for i, (x, y) in enumerate(examples("phishing")):
        prediction, pending = scorer.score(record(i, x), "records", 0, i, 0, time.perf_counter())
        assert prediction["input_offset"] == i and prediction["record_id"] == f"r{i}"
        scorer.learn(pending, y, label_time_ms=pending["scored_at"] + 1000)
    figures = scorer.monitor.figures()
    assert figures["records_scored"] == figures["records_learned"] == 1250
    assert figures["accuracy"] > 0.85  # Phishing's majority class is about 0.56
    assert figures["label_delay_p50_ms"] == 1000


def test_each_partition_learns_its_own_model_and_restores_from_its_snapshot(tmp_path):
    scorer = StreamScorer.restore(lambda: build("logistic_regression"), "lr", "1", FolderModelStore(tmp_path))
    data = list(examples("phishing"))
    for i, (x, y) in enumerate(data[:500]):
        _, pending = scorer.score(record(i, x), "records", i % 2, i, 0, time.perf_counter())
        scorer.learn(pending, y, 0)
    assert scorer.partition_models[0].n_learned == scorer.partition_models[1].n_learned == 250
    assert scorer.n_learned == 500
    assert scorer.learned_since_snapshot == {0, 1}

    restarted = StreamScorer.restore(lambda: build("logistic_regression"), "lr", "1", FolderModelStore(tmp_path))
    restarted.restore_partition(1, scorer.snapshot(1))
    probe = data[600][0]
    assert restarted.model_for(1).predict(probe) == scorer.model_for(1).predict(probe)
    assert restarted.model_for(0).predict(probe).score == 0.5  # partition 0 had no snapshot: the untrained build
    restarted.release(1)
    assert restarted.n_learned == 0


def test_only_partition_0_is_exported_to_the_store(tmp_path):
    store = FolderModelStore(tmp_path)
    scorer = StreamScorer.restore(lambda: build("logistic_regression"), "lr", "1", store)
    for i, (x, y) in enumerate(list(examples("phishing"))[:100]):
        _, pending = scorer.score(record(i, x), "records", 1, i, 0, time.perf_counter())
        scorer.learn(pending, y, 0)
    assert scorer.checkpoint(0) is False  # this worker has no model of partition 0
    _, pending = scorer.score(record(0, {"a": 1.0}), "records", 0, 0, 0, time.perf_counter())
    scorer.learn(pending, True, 0)
    assert scorer.checkpoint(0) is True
    assert scorer.checkpoint(0) is False  # nothing new learned
    assert store.load("lr", "1")["n_learned"] == 1


def test_prediction_is_made_before_learning(tmp_path):
    scorer = StreamScorer.restore(lambda: build("logistic_regression"), "lr", "1", FolderModelStore(tmp_path))
    x = {"a": 1.0}
    for _ in range(50):
        _, pending = scorer.score(record(0, x), "t", 0, 0, 0, time.perf_counter())
        scorer.learn(pending, True, 0)
    # The very first prediction (untrained) was judged as it was made, not after learning.
    first_wrong = scorer.monitor.figures()["accuracy"] < 1.0
    assert first_wrong


@pytest.mark.parametrize("poison", [math.nan, math.inf, 1e308, -1e308])
def test_a_poison_feature_never_reaches_the_model(tmp_path, poison):
    scorer = StreamScorer.restore(lambda: build("logistic_regression"), "lr", "1", FolderModelStore(tmp_path))
    data = list(examples("phishing"))
    for i, (x, y) in enumerate(data[:300]):
        _, pending = scorer.score(record(i, x), "records", 0, i, 0, time.perf_counter())
        scorer.learn(pending, y, 0)
    before = scorer.model_for(0).predict(data[400][0])
    with pytest.raises(InvalidValue) as refused:
        scorer.score(record(999, data[301][0] | {"empty_server_form_handler": poison}), "records", 0, 999, 0,
                     time.perf_counter())
    assert refused.value.field == "features.empty_server_form_handler"
    assert scorer.monitor.records_scored == 300 and scorer.n_learned == 300
    assert scorer.model_for(0).predict(data[400][0]) == before
    assert scorer.checkpoint(0) is True


@pytest.mark.parametrize("label", ["yes", 2.5, 2])
def test_a_bad_label_is_refused_before_anything_is_judged_or_learned(tmp_path, label):
    scorer = StreamScorer.restore(lambda: build("logistic_regression"), "lr", "1", FolderModelStore(tmp_path))
    _, pending = scorer.score(record(0, {"a": 1.0}), "records", 0, 0, 0, time.perf_counter())
    with pytest.raises(InvalidValue) as refused:
        scorer.learn(pending, label, 0)
    assert refused.value.field == "label"
    assert scorer.n_learned == 0 and scorer.monitor.records_learned == 0
    scorer.learn(pending, True, 0)  # the good label that follows is learned as usual
    assert scorer.n_learned == 1


def test_a_pending_entry_with_poison_features_is_refused_at_learning(tmp_path):
    scorer = StreamScorer.restore(lambda: build("logistic_regression"), "lr", "1", FolderModelStore(tmp_path))
    _, pending = scorer.score(record(0, {"a": 1.0}), "records", 0, 0, 0, time.perf_counter())
    with pytest.raises(InvalidValue):
        scorer.learn(pending | {"features": {"a": math.nan}}, True, 0)
    assert scorer.n_learned == 0


def test_a_model_with_non_finite_outputs_is_never_checkpointed_and_goes_back_to_the_last_one(tmp_path):
    store = FolderModelStore(tmp_path)
    scorer = StreamScorer.restore(lambda: build("logistic_regression"), "lr", "1", store)
    data = list(examples("phishing"))
    for i, (x, y) in enumerate(data[:200]):
        _, pending = scorer.score(record(i, x), "records", 0, i, 0, time.perf_counter())
        scorer.learn(pending, y, 0)
    assert scorer.checkpoint(0) is True
    good = store.path("lr", "1").read_bytes()
    # Past the checks (as a model with a bug of its own would be): the weights go NaN.
    scorer.model_for(0).learn(data[200][0] | {"empty_server_form_handler": math.nan}, True)
    assert math.isnan(scorer.model_for(0).predict(data[201][0]).score)
    assert scorer.checkpoint(0) is False
    assert scorer.checkpoints_refused == 1 and 0 in scorer.learned_since_snapshot
    assert store.path("lr", "1").read_bytes() == good
    assert scorer.model_for(0).n_learned == 200 and math.isfinite(scorer.model_for(0).predict(data[201][0]).score)


def test_a_broken_checkpoint_from_before_the_checks_is_replaced_by_a_fresh_model(tmp_path):
    store = FolderModelStore(tmp_path)
    data = list(examples("phishing"))
    broken = build("logistic_regression")
    for x, y in data[:50]:
        broken.learn_one(x, y)
    broken.learn_one(data[50][0] | {"empty_server_form_handler": math.nan}, True)  # as an older app learned it
    store.save("lr", "1", {"estimator": broken, "n_learned": 51})

    scorer = StreamScorer.restore(lambda: build("logistic_regression"), "lr", "1", store)
    _, pending = scorer.score(record(0, data[60][0]), "records", 0, 0, 0, time.perf_counter())
    scorer.learn(pending, data[60][1], 0)
    assert scorer.checkpoint(0) is False and scorer.checkpoints_refused == 1
    assert scorer.n_learned == 0 and math.isfinite(scorer.model_for(0).predict(data[61][0]).score)
    assert scorer.checkpoint(0) is True  # the fresh model replaces the broken checkpoint at once
    assert store.load("lr", "1")["n_learned"] == 0
