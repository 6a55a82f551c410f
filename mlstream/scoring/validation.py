"""Poison values stopped before they reach a model: pure checks of features and labels.

One NaN, an infinity or a float near the top of float64's range makes an online model's
weights non-finite on its first ``learn_one``, and every later prediction NaN. A label of
the wrong type for the model's target (``"yes"`` or ``2.5`` for a yes/no classifier) is
either refused by river with a ``ValueError`` or, worse, learned as a class of its own.
These checks raise :class:`InvalidValue` naming the field and a reason code instead, so
a data plane dead-letters the record or label (reason ``INVALID_VALUE``) and goes on.

    >>> check_features({"x": 1.5, "y": -3.0})
    >>> check_features({"x": float("nan")})
    Traceback (most recent call last):
    ...
    mlstream.scoring.validation.InvalidValue: features.x: NON_FINITE: nan
    >>> check_features({"x": 1e308}, max_abs_value=1e15)
    Traceback (most recent call last):
    ...
    mlstream.scoring.validation.InvalidValue: features.x: OUT_OF_RANGE: 1e+308 is beyond +-1e+15
    >>> check_label(True, BINARY)
    >>> check_label("yes", BINARY)
    Traceback (most recent call last):
    ...
    mlstream.scoring.validation.InvalidValue: label: WRONG_LABEL_TYPE: 'yes' (str) for a binary target: expected a boolean or 0/1
    >>> check_label(2.5, BINARY)
    Traceback (most recent call last):
    ...
    mlstream.scoring.validation.InvalidValue: label: WRONG_LABEL_TYPE: 2.5 (float) for a binary target: expected a boolean or 0/1
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping

from river import base

#: Largest magnitude a feature or a regression label may have. Above any count, amount or
#: epoch-milliseconds timestamp (1.7e12) a feature plausibly holds, and at the edge of float64's
#: exact integers (2**53 = 9.0e15); far below where river's running sums of squares (a
#: StandardScaler's variance) overflow to inf (about 1.3e154 per value). MLSTREAM_MAX_ABS_VALUE sets it.
DEFAULT_MAX_ABS_VALUE = 1e15

#: Reason codes, carried by :class:`InvalidValue` and written into the dead letter's message.
NON_FINITE = "NON_FINITE"
OUT_OF_RANGE = "OUT_OF_RANGE"
NOT_A_NUMBER = "NOT_A_NUMBER"
WRONG_LABEL_TYPE = "WRONG_LABEL_TYPE"

#: The kinds of target a model learns, as far as its labels are concerned.
BINARY, MULTICLASS, REGRESSION = "binary", "multiclass", "regression"


class InvalidValue(ValueError):
    """A feature or label no model should see; ``field`` names it, ``reason`` is one of the codes above."""

    def __init__(self, field: str, reason: str, detail: str):
        super().__init__(f"{field}: {reason}: {detail}")
        self.field = field
        self.reason = reason
        self.detail = detail


def target_of(estimator) -> str:
    """What a river estimator (or pipeline) learns: BINARY, MULTICLASS or REGRESSION.

    >>> from river import linear_model, tree
    >>> target_of(linear_model.LogisticRegression()), target_of(tree.HoeffdingTreeClassifier())
    ('binary', 'multiclass')
    >>> target_of(linear_model.LinearRegression())
    'regression'
    """
    if isinstance(estimator, base.Classifier):
        return MULTICLASS if getattr(estimator, "_multiclass", False) else BINARY
    return REGRESSION


def check_number(field: str, value, max_abs_value: float = DEFAULT_MAX_ABS_VALUE) -> None:
    """``value`` is a finite real number within ``max_abs_value``, else :class:`InvalidValue`."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidValue(field, NOT_A_NUMBER, f"{value!r} ({type(value).__name__})")
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidValue(field, NON_FINITE, repr(value))
    if abs(value) > max_abs_value:
        raise InvalidValue(field, OUT_OF_RANGE, f"{value!r} is beyond +-{max_abs_value:g}")


def check_features(features: Mapping[str, float | str], max_abs_value: float = DEFAULT_MAX_ABS_VALUE,
                   categoricals: Collection[str] = ()) -> None:
    """Every feature value is a finite number within ``max_abs_value``, but a string for a feature the view
    declares categorical (``categoricals``: a CSV's plan or city, one-hot encoded by the model spec).

    >>> check_features({"plan": "basic", "fee": 20.0}, categoricals=("plan",))
    >>> check_features({"plan": "basic", "fee": "20"}, categoricals=("plan",))
    Traceback (most recent call last):
    ...
    mlstream.scoring.validation.InvalidValue: features.fee: NOT_A_NUMBER: '20' (str)
    """
    for name, value in features.items():
        if isinstance(value, str) and name in categoricals:
            continue
        check_number(f"features.{name}", value, max_abs_value)


def check_label(label, target: str, max_abs_value: float = DEFAULT_MAX_ABS_VALUE) -> None:
    """``label`` fits a model learning ``target``.

    Binary: a boolean, or the integers 0 and 1 (river's Shuttle and Agrawal streams use them).
    Multiclass: a boolean, an integer or a non-blank string. Regression: a finite number
    within ``max_abs_value``.

    >>> check_label(1, BINARY); check_label("setosa", MULTICLASS); check_label(3.25, REGRESSION)
    >>> check_label(2, BINARY)
    Traceback (most recent call last):
    ...
    mlstream.scoring.validation.InvalidValue: label: WRONG_LABEL_TYPE: 2 (int) for a binary target: expected a boolean or 0/1
    >>> check_label(float("inf"), REGRESSION)
    Traceback (most recent call last):
    ...
    mlstream.scoring.validation.InvalidValue: label: NON_FINITE: inf
    """
    if target == REGRESSION:
        check_number("label", label, max_abs_value)
        return
    if target == BINARY:
        if isinstance(label, bool) or (isinstance(label, int) and label in (0, 1)):
            return
        expected = "a boolean or 0/1"
    else:
        if isinstance(label, (bool, int)) or (isinstance(label, str) and label.strip()):
            return
        expected = "a boolean, an integer or a non-blank string"
    raise InvalidValue("label", WRONG_LABEL_TYPE,
                       f"{label!r} ({type(label).__name__}) for a {target} target: expected {expected}")
