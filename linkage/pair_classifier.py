"""A river classifier that learns which candidate pairs match from confirmed pairs.

Fellegi-Sunter learns without labels; when reviewers confirm or reject some pairs (a
delayed trickle, as labels come in practice), this model learns from them one at a time
and, once it has seen ``min_confirmed``, takes ``weight`` of each pair's match log-odds.
Its features are the pair's comparison levels, one-hot (``surname=2``); a missing value
is no feature. Before learning each pair it predicts it, so its accuracy is prequential,
as river measures it.

>>> clf = PairClassifier(min_confirmed=20)
>>> for i in range(100):
...     clf.learn((2, 2, 1), True) if i % 2 else clf.learn((0, 0, None), False)
>>> clf.ready, clf.probability((2, 2, 1)) > 0.9, clf.probability((0, 0, None)) < 0.1
(True, True, True)
>>> PairClassifier.from_state(clf.state()).probability((2, 2, 1)) == clf.probability((2, 2, 1))
True
"""

from __future__ import annotations

import base64
import pickle
from collections.abc import Sequence

from river import linear_model, metrics, optim


def features(vector: Sequence[int | None]) -> dict[str, float]:
    return {f"c{k}={level}": 1.0 for k, level in enumerate(vector) if level is not None}


class PairClassifier:
    def __init__(self, min_confirmed: int = 100):
        self.min_confirmed = min_confirmed
        self.model = linear_model.LogisticRegression(optimizer=optim.SGD(0.1))
        self.accuracy = metrics.Accuracy()
        self.n_learned = 0

    @property
    def ready(self) -> bool:
        return self.n_learned >= self.min_confirmed

    def probability(self, vector: Sequence[int | None]) -> float:
        return self.model.predict_proba_one(features(vector)).get(True, 0.0)

    def learn(self, vector: Sequence[int | None], match: bool) -> None:
        x = features(vector)
        self.accuracy.update(match, self.model.predict_proba_one(x).get(True, 0.0) >= 0.5)
        self.model.learn_one(x, match)
        self.n_learned += 1

    def state(self) -> dict:
        """JSON-ready, to keep in a table and restore after a restart."""
        return {"pickle": base64.b64encode(pickle.dumps(self)).decode()}

    @classmethod
    def from_state(cls, state: dict) -> "PairClassifier":
        return pickle.loads(base64.b64decode(state["pickle"]))
