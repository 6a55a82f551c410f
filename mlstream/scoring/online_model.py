"""A river estimator serving a stream: predict now, learn when the label comes.

    >>> from river import linear_model
    >>> model = OnlineModel(linear_model.LogisticRegression(), name="demo", version="1")
    >>> model.predict({"x": 2.0})
    Prediction(label=False, score=0.5)
    >>> model.learn({"x": 2.0}, True)
    >>> model.predict({"x": 2.0}).label
    True
    >>> model.n_learned
    1
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Prediction:
    label: Any  # None until a model that abstains has learned something
    score: float | None  # probability of ``label`` for classifiers that give one


class OnlineModel:
    def __init__(self, estimator, name: str, version: str, n_learned: int = 0):
        self.estimator = estimator
        self.name = name
        self.version = version
        self.n_learned = n_learned

    def predict(self, features: dict[str, float]) -> Prediction:
        if hasattr(self.estimator, "predict_proba_one"):
            proba = self.estimator.predict_proba_one(features)
            if not proba:
                return Prediction(None, None)
            label = max(proba, key=proba.get)
            return Prediction(label, float(proba[label]))
        return Prediction(self.estimator.predict_one(features), None)

    def learn(self, features: dict[str, float], label) -> None:
        self.estimator.learn_one(features, label)
        self.n_learned += 1
