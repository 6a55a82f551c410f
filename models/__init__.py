"""Model specs: each module builds one river pipeline, looked up here by name.

Every spec returns a fresh, untrained river estimator that honours
``predict_one`` / ``learn_one`` (and ``predict_proba_one`` for classifiers).

    >>> model = build("logistic_regression")
    >>> model.learn_one({"x": 1.0}, True)
    >>> model.predict_one({"x": 1.0})
    True
"""

from __future__ import annotations

from importlib import import_module

SPECS = ("logistic_regression", "hoeffding_tree")


def build(name: str):
    if name not in SPECS:
        raise ValueError(f"unknown model spec {name!r}; choose one of: {', '.join(SPECS)}")
    return import_module(f"models.{name}").build()
