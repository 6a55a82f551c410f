import time

from mlstream.scoring.model_store import FolderModelStore
from models import build
from producers.datasets import examples
from mlstream.scoring.scorer import StreamScorer


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


def test_a_restart_continues_from_the_checkpoint(tmp_path):
    store = FolderModelStore(tmp_path)
    scorer = StreamScorer.restore(lambda: build("logistic_regression"), "lr", "1", store)
    data = list(examples("phishing"))
    for i, (x, y) in enumerate(data[:500]):
        _, pending = scorer.score(record(i, x), "records", 0, i, 0, time.perf_counter())
        scorer.learn(pending, y, 0)
    assert scorer.checkpoint() is True
    assert scorer.checkpoint() is False  # nothing new learned

    restarted = StreamScorer.restore(lambda: build("logistic_regression"), "lr", "1", store)
    assert restarted.model.n_learned == 500
    probe = data[600][0]
    assert restarted.model.predict(probe) == scorer.model.predict(probe)
    fresh = StreamScorer.restore(lambda: build("logistic_regression"), "lr", "2", store)
    assert fresh.model.n_learned == 0


def test_prediction_is_made_before_learning(tmp_path):
    scorer = StreamScorer.restore(lambda: build("logistic_regression"), "lr", "1", FolderModelStore(tmp_path))
    x = {"a": 1.0}
    for _ in range(50):
        _, pending = scorer.score(record(0, x), "t", 0, 0, 0, time.perf_counter())
        scorer.learn(pending, True, 0)
    # The very first prediction (untrained) was judged as it was made, not after learning.
    first_wrong = scorer.monitor.figures()["accuracy"] < 1.0
    assert first_wrong
