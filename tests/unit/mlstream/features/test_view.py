"""Feature views: parsing and its errors, records and labels read through a view."""

import dataclasses
from datetime import datetime, timezone

import pytest

from mlstream.config_store import FolderConfigStore
from mlstream.features.view import (DEFAULT_REF, FeatureView, FeatureViewError, RecordMismatch, default_view,
                                    load_feature_view)
from mlstream.settings import Settings, Topics

TOPICS = Topics(prefix="t.")

CUSTOMERS = """\
records:
  topic: t.customers
  id: {key: true}
  event_time: {field: signed_up}
features:
  - {path: age, type: number}
  - {path: balance, type: number, default: 0}
  - {path: plan, type: categorical, missing: fail}
  - {path: address.city, name: city, type: categorical}
  - {path: active, type: boolean}
labels:
  id: {field: id}
  label: {field: churned}
  event_time: {field: at}
"""


def customers() -> FeatureView:
    return FeatureView.parse(CUSTOMERS, "customers.yaml", TOPICS, name="customers", version=3)


def test_the_default_view_reads_the_record_shape_as_before():
    view = default_view(TOPICS)
    assert (view.ref, view.records_topic, view.labels_topic) == (DEFAULT_REF, "t.records", "t.labels")
    when = datetime(2026, 1, 2, tzinfo=timezone.utc)
    record = view.record_from({"id": "r1", "source": "s", "event_time": when, "features": {"x": 1.0, "y": 2}},
                              key=b"r1")
    assert record == {"id": "r1", "event_time": int(when.timestamp() * 1000), "features": {"x": 1.0, "y": 2.0}}
    assert view.label_from({"id": "r1", "label": False, "event_time": 7}, b"r1") == ("r1", False, 7)


def test_a_typed_record_becomes_typed_features():
    record = customers().record_from({"signed_up": 10, "age": 41, "balance": None, "plan": "gold",
                                      "address": {"city": "Leeds"}, "active": False}, key=b"c-1")
    assert record == {"id": "c-1", "event_time": 10, "features": {
        "age": 41.0, "balance": 0.0, "plan": "gold", "city": "Leeds", "active": 0.0}}
    assert customers().categoricals == ("plan", "city")


def test_missing_values_are_skipped_defaulted_or_refused_as_the_view_says():
    view = customers()
    # a writer schema without age, balance and address (removed features) reads as missing
    record = view.record_from({"signed_up": 10, "plan": "basic"}, key=b"c-2")
    assert record["features"] == {"balance": 0.0, "plan": "basic"}
    with pytest.raises(RecordMismatch) as caught:
        view.record_from({"signed_up": 10, "plan": None}, key=b"c-2")
    assert caught.value.field == "plan" and "missing: fail" in caught.value.reason


@pytest.mark.parametrize("decoded, key, field, reason", [
    ({"signed_up": 1, "plan": "a", "age": "41"}, b"k", "age", "expected a number"),
    ({"signed_up": 1, "plan": "a", "age": True}, b"k", "age", "expected a number"),
    ({"signed_up": 1, "plan": 3}, b"k", "plan", "expected a string or enum"),
    ({"signed_up": 1, "plan": "a", "active": 1}, b"k", "active", "expected a boolean"),
    ({"signed_up": "yesterday", "plan": "a"}, b"k", "signed_up", "an event time is"),
    ({"plan": "a"}, b"k", "signed_up", "an event time is"),
    ({"signed_up": 1, "plan": "a"}, None, "(Kafka key)", "has none"),
    ({"signed_up": 1, "plan": "a"}, b"\xff", "(Kafka key)", "not UTF-8"),
])
def test_a_record_that_does_not_fit_names_the_field_and_why(decoded, key, field, reason):
    with pytest.raises(RecordMismatch) as caught:
        customers().record_from(decoded, key)
    assert caught.value.field == field and reason in caught.value.reason
    assert str(caught.value).startswith(f"{field}: ")


def test_a_label_that_does_not_fit_names_the_field():
    view = customers()
    assert view.label_from({"id": 12, "churned": "yes", "at": 5}, None) == ("12", "yes", 5)
    for decoded, field in (({"id": "c", "at": 5}, "churned"), ({"id": "", "churned": True, "at": 5}, "id"),
                           ({"id": "c", "churned": [1], "at": 5}, "churned")):
        with pytest.raises(RecordMismatch) as caught:
            view.label_from(decoded, None)
        assert caught.value.field == field


def test_number_map_entries_are_checked_one_by_one():
    with pytest.raises(RecordMismatch) as caught:
        default_view(TOPICS).record_from({"id": "r", "event_time": 1, "features": {"x": "1"}}, None)
    assert caught.value.field == "features[x]"


def test_errors_name_the_file_line_and_key_all_at_once():
    text = """\
records:
  id: {field: id, key: true}
  event_time: {field: 3bad}
features:
  - {path: age, type: integer}
  - {path: plan, type: categorical, default: 3}
  - {path: plan, type: categorical}
  - {path: extra, type: number, missing: fail, default: 1}
labels:
  label: {field: y}
  event_time: {field: t}
  colour: red
"""
    with pytest.raises(FeatureViewError) as caught:
        FeatureView.parse(text, "bad.yaml", TOPICS, name="bad", version=1)
    message = str(caught.value)
    assert "bad.yaml:2: records.id: give either {field: PATH} or {key: true}" in message
    assert "bad.yaml:3: records.event_time.field: a field path" in message
    assert "bad.yaml:5: features[0].type: must be one of number, boolean, categorical, number_map (got 'integer')" \
        in message
    assert "bad.yaml:12: labels.colour: unknown key" in message
    assert "bad.yaml:9: labels: 'id' is a required property" in message


def test_cross_key_errors_come_once_the_schema_is_met():
    text = CUSTOMERS.replace("  - {path: active, type: boolean}\n", """\
  - {path: active, type: boolean, default: 1}
  - {path: age, type: number}
  - {path: extra, type: number, missing: fail, default: 1}
  - {path: vip, type: number, missing: default}
""")
    with pytest.raises(FeatureViewError) as caught:
        FeatureView.parse(text, "v.yaml", TOPICS, name="v", version=1)
    message = str(caught.value)
    assert "v.yaml:10: features[4].default: a boolean feature's default is true or false, got 1" in message
    assert "v.yaml:11: features[5]: feature name 'age' is used twice (also features[0])" in message
    assert "v.yaml:12: features[6]: a default is used only with missing: default (this feature says fail)" in message
    assert "v.yaml:13: features[7]: missing: default needs a default value" in message


def test_bad_yaml_and_an_empty_view_are_clear_errors():
    with pytest.raises(FeatureViewError, match=r"^x.yaml:2: not valid YAML"):
        FeatureView.parse("records:\n  - : [\n", "x.yaml", TOPICS, name="x", version=1)
    with pytest.raises(FeatureViewError, match="empty"):
        FeatureView.parse("", "x.yaml", TOPICS, name="x", version=1)


def test_the_settings_name_a_stored_view_and_its_version(tmp_path):
    store = FolderConfigStore(tmp_path)
    store.put("featureview.customers", CUSTOMERS)
    store.put("featureview.customers", CUSTOMERS.replace("type: boolean", "type: boolean, missing: fail"))
    settings = dataclasses.replace(Settings.from_env(), topics=TOPICS)
    assert load_feature_view(settings, store).ref == DEFAULT_REF
    latest = load_feature_view(dataclasses.replace(settings, feature_view="customers"), store)
    first = load_feature_view(dataclasses.replace(settings, feature_view="customers@1"), store)
    assert (latest.ref, first.ref) == ("customers@2", "customers@1")
    assert latest.features[-1].missing == "fail" and first.features[-1].missing == "skip"
