"""Model specs: each module builds one river pipeline, looked up here by name.

Every spec returns a fresh, untrained river estimator that honours
``predict_one`` / ``learn_one`` (and ``predict_proba_one`` for classifiers).
A spec is one of the built-in names (``SPECS``, modules of this package) or the dotted
path of any importable module with a ``build()``, such as the ``churn.model`` a project
made by ``mlstream new-project`` holds (its folder on ``PYTHONPATH``).

    >>> model = build("logistic_regression")
    >>> model.learn_one({"x": 1.0}, True)
    >>> model.predict_one({"x": 1.0})
    True
    >>> build("models.hoeffding_tree").__class__.__name__   # a dotted path works for any module
    'HoeffdingAdaptiveTreeClassifier'
    >>> check("no_such_spec")
    Traceback (most recent call last):
    ...
    ValueError: unknown model spec 'no_such_spec'; choose one of: logistic_regression, hoeffding_tree, or give ...
"""

from __future__ import annotations

from importlib import import_module
from types import ModuleType

SPECS = ("logistic_regression", "hoeffding_tree")


def check(name: str) -> ModuleType:
    """The module of spec ``name``; ValueError saying why if there is none or it has no ``build()``."""
    if name in SPECS:
        return import_module(f"models.{name}")
    if "." not in name or not all(part.isidentifier() for part in name.split(".")):
        raise ValueError(f"unknown model spec {name!r}; choose one of: {', '.join(SPECS)}, or give a module's "
                         f"dotted path (package.module) with a build()")
    try:
        module = import_module(name)
    except ImportError as err:
        raise ValueError(f"model spec {name!r}: cannot import it ({err}); is its project's folder on "
                         f"PYTHONPATH? ('mlstream project run' sets it)") from None
    if not callable(getattr(module, "build", None)):
        raise ValueError(f"model spec {name!r}: module {module.__file__} has no build() returning a river estimator")
    return module


def build(name: str):
    return check(name).build()
