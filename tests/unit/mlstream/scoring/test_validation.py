import math

import pytest

import models
from mlstream.settings import DEFAULTS, Settings
from mlstream.scoring.validation import (BINARY, DEFAULT_MAX_ABS_VALUE, MULTICLASS, NON_FINITE, NOT_A_NUMBER,
                                         OUT_OF_RANGE, REGRESSION, WRONG_LABEL_TYPE, InvalidValue, check_features,
                                         check_label, target_of)


@pytest.mark.parametrize("value, reason", [
    (math.nan, NON_FINITE), (math.inf, NON_FINITE), (-math.inf, NON_FINITE),
    (1e308, OUT_OF_RANGE), (-1e308, OUT_OF_RANGE), (1e16, OUT_OF_RANGE),
    ("3", NOT_A_NUMBER), (None, NOT_A_NUMBER), (True, NOT_A_NUMBER),
])
def test_a_poison_feature_is_refused_naming_the_field_and_the_reason(value, reason):
    with pytest.raises(InvalidValue) as refused:
        check_features({"fine": 1.0, "bad": value})
    assert refused.value.field == "features.bad" and refused.value.reason == reason


def test_a_categorical_features_string_passes_and_only_its():
    """A feature view's categoricals are strings (a CSV's plan, city): every such record was dead-lettered."""
    check_features({"plan": "basic", "address.city": "Leeds", "fee": 20.0}, categoricals=("plan", "address.city"))
    with pytest.raises(InvalidValue) as refused:
        check_features({"plan": "basic", "fee": "20"}, categoricals=("plan",))
    assert refused.value.field == "features.fee" and refused.value.reason == NOT_A_NUMBER


def test_ordinary_values_and_the_bound_itself_pass():
    check_features({"a": 0.0, "b": -1e15, "c": 1.7e12, "d": 3})
    check_features({"x": 5e15}, max_abs_value=1e16)
    with pytest.raises(InvalidValue):
        check_features({"x": 2.0}, max_abs_value=1.0)


@pytest.mark.parametrize("label, target", [
    ("yes", BINARY), (2.5, BINARY), (2, BINARY), (1.0, BINARY), (None, BINARY),
    (2.5, MULTICLASS), ("  ", MULTICLASS), (None, MULTICLASS),
    ("1.5", REGRESSION), (math.nan, REGRESSION), (1e300, REGRESSION), (True, REGRESSION),
])
def test_a_label_that_does_not_fit_the_target_is_refused(label, target):
    with pytest.raises(InvalidValue) as refused:
        check_label(label, target)
    assert refused.value.field == "label"


@pytest.mark.parametrize("label, target", [
    (True, BINARY), (False, BINARY), (0, BINARY), (1, BINARY),
    ("setosa", MULTICLASS), (3, MULTICLASS), (True, MULTICLASS),
    (2.5, REGRESSION), (-7, REGRESSION),
])
def test_labels_that_fit_pass(label, target):
    check_label(label, target)


def test_the_project_model_specs_have_the_targets_their_labels_need():
    assert target_of(models.build("logistic_regression")) == BINARY
    assert target_of(models.build("hoeffding_tree")) == MULTICLASS


def test_wrong_label_type_reason():
    with pytest.raises(InvalidValue) as refused:
        check_label("yes", BINARY)
    assert refused.value.reason == WRONG_LABEL_TYPE and "binary" in str(refused.value)


def test_the_setting_defaults_to_the_documented_bound():
    assert float(DEFAULTS["MLSTREAM_MAX_ABS_VALUE"]) == Settings.max_abs_value == DEFAULT_MAX_ABS_VALUE
