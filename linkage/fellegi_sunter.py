"""The Fellegi-Sunter model, learned without labels by EM over comparison vectors.

Each comparison k at level l has m = P(level | match) and u = P(level | non-match); a
pair's match weight is log2 of the prior odds plus the sum of log2(m/u) over its
non-missing comparisons, and its match probability follows from the weight. The
parameters are learned from the candidate pairs themselves with
expectation-maximisation (Fellegi & Sunter 1969; Winkler 1988), assuming comparisons
independent given the match status. EM runs on the counts of distinct vectors, which
are few, so a refit costs milliseconds whatever the number of pairs seen.

>>> import random
>>> rng, model = random.Random(1), FellegiSunter([2, 2, 2, 2], prior_match=0.3)
>>> for i in range(5000):   # 10% matches agree on each field 95% of the time, non-matches 10%
...     agree = 0.95 if i % 10 == 0 else 0.1
...     model.observe(tuple(int(rng.random() < agree) for _ in range(4)))
>>> model.fit()
>>> round(model.prior_match, 2), round(model.m[0][1], 2), round(model.u[0][1], 2)
(0.1, 0.92, 0.09)
>>> model.probability((1, 1, 1, 1)) > 0.99, model.probability((0, 0, 0, None)) < 0.01
(True, True)
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

import numpy as np

Vector = tuple[int | None, ...]
#: probabilities are kept away from 0 and 1 so that no level makes a weight infinite
FLOOR = 1e-6


def _initial_m(n_levels: int) -> list[float]:
    """Matches mostly agree: 0.9 on the top level, the rest shared out with more on higher levels."""
    if n_levels == 1:
        return [1.0]
    rest = [float(i + 1) for i in range(n_levels - 1)]
    return [0.1 * r / sum(rest) for r in rest] + [0.9]


def _initial_u(n_levels: int) -> list[float]:
    """Non-matches mostly disagree."""
    if n_levels == 1:
        return [1.0]
    rest = [float(n_levels - i) for i in range(1, n_levels)]
    return [0.9] + [0.1 * r / sum(rest) for r in rest]


class FellegiSunter:
    def __init__(self, n_levels: Sequence[int], prior_match: float = 0.05):
        self.n_levels = list(n_levels)
        self.prior_match = prior_match
        self.m = [_initial_m(n) for n in self.n_levels]
        self.u = [_initial_u(n) for n in self.n_levels]
        self.counts: Counter[Vector] = Counter()
        self.n_fits = 0

    def observe(self, vector: Vector) -> None:
        self.counts[tuple(vector)] += 1

    @property
    def n_observed(self) -> int:
        return sum(self.counts.values())

    def weight(self, vector: Vector) -> float:
        w = math.log2(self.prior_match / (1 - self.prior_match))
        for k, level in enumerate(vector):
            if level is not None:
                w += math.log2(self.m[k][level] / self.u[k][level])
        return w

    def probability(self, vector: Vector) -> float:
        w = self.weight(vector)
        return 1.0 / (1.0 + 2.0 ** -w) if w > -1000 else 0.0

    def fit(self, iterations: int = 100, tolerance: float = 1e-6) -> None:
        """EM over the observed vectors, starting from the current parameters."""
        if not self.counts:
            return
        vectors = list(self.counts)
        counts = np.array([self.counts[v] for v in vectors], dtype=float)
        levels = np.array([[-1 if x is None else x for x in v] for v in vectors], dtype=int)
        total = counts.sum()
        prior = self.prior_match
        m = [np.array(p) for p in self.m]
        u = [np.array(p) for p in self.u]
        for _ in range(iterations):
            # E step: P(match | vector) for each distinct vector
            log_m = np.full(len(vectors), math.log(prior))
            log_u = np.full(len(vectors), math.log(1 - prior))
            for k in range(len(self.n_levels)):
                present = levels[:, k] >= 0
                log_m[present] += np.log(m[k][levels[present, k]])
                log_u[present] += np.log(u[k][levels[present, k]])
            g = 1.0 / (1.0 + np.exp(np.clip(log_u - log_m, -700, 700)))
            # M step: expected counts per level, missing values left out
            new_prior = float((g * counts).sum() / total)
            new_m, new_u = [], []
            for k, n in enumerate(self.n_levels):
                present = levels[:, k] >= 0
                wm = np.bincount(levels[present, k], weights=(g * counts)[present], minlength=n)
                wu = np.bincount(levels[present, k], weights=((1 - g) * counts)[present], minlength=n)
                new_m.append(np.clip(wm / max(wm.sum(), FLOOR), FLOOR, 1 - FLOOR))
                new_u.append(np.clip(wu / max(wu.sum(), FLOOR), FLOOR, 1 - FLOOR))
            change = abs(new_prior - prior) + max(
                float(np.abs(a - b).max()) for a, b in zip(new_m + new_u, m + u))
            prior, m, u = min(max(new_prior, FLOOR), 1 - FLOOR), new_m, new_u
            if change < tolerance:
                break
        self.prior_match = prior
        self.m = [p.tolist() for p in m]
        self.u = [p.tolist() for p in u]
        self.n_fits += 1

    def state(self) -> dict:
        """JSON-ready parameters and counts, to keep in a table and restore after a restart."""
        return {"n_levels": self.n_levels, "prior_match": self.prior_match, "m": self.m, "u": self.u,
                "n_fits": self.n_fits,
                "counts": [[list(v), c] for v, c in self.counts.items()]}

    @classmethod
    def from_state(cls, state: dict) -> "FellegiSunter":
        model = cls(state["n_levels"], state["prior_match"])
        model.m, model.u, model.n_fits = state["m"], state["u"], state["n_fits"]
        model.counts = Counter({tuple(v): c for v, c in state["counts"]})
        return model
