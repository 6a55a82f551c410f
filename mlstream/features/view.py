"""A feature view: how the scorer reads records and labels of any Avro shape.

A view says where a record's id and event time are, which fields are features and of what
type, what a missing value becomes, and where the labels come from. It turns each decoded
value (a plain dict, read with its writer schema: :mod:`mlstream.kafka.serde`) into what
scoring takes, ``{"id", "event_time", "features"}``, and each label into
``(record_id, label, event_time_ms)``. A value that does not fit raises
:class:`RecordMismatch` naming the field; the app dead-letters it (``FEATURE_VIEW_MISMATCH``).

Views are YAML, checked against ``mlstream/schemas/feature_view.schema.json`` (every
problem at once, each with its file, line and key) and versioned in the Schema Registry
like the other configs: ``mlstream config put featureview.NAME FILE``, then
``MLSTREAM_FEATURE_VIEW=NAME`` (or ``NAME@VERSION``). The project's own ``Record`` shape is
the built-in view ``default``. docs/feature-views.md describes every key.

    >>> from mlstream.settings import Topics
    >>> view = FeatureView.parse('''
    ... records:
    ...   topic: shop.customers
    ...   id: {field: customer_id}
    ...   event_time: {field: signed_up}
    ... features:
    ...   - {path: age, type: number, default: 40}
    ...   - {path: plan, type: categorical}
    ...   - {path: address.city, type: categorical, missing: fail}
    ...   - {path: newsletter, type: boolean}
    ... labels:
    ...   id: {field: id}
    ...   label: {field: label}
    ...   event_time: {field: event_time}
    ... ''', "customers.yaml", Topics(prefix="shop."), name="customers", version=2)
    >>> view.ref, view.records_topic, view.labels_topic, view.categoricals
    ('customers@2', 'shop.customers', 'shop.labels', ('plan', 'address.city'))
    >>> record = view.record_from({"customer_id": "c-7", "signed_up": 1700000000000, "age": None, "plan": "gold",
    ...                            "address": {"city": "Leeds"}, "newsletter": True}, key=b"c-7")
    >>> record["id"], record["event_time"], record["features"]
    ('c-7', 1700000000000, {'age': 40.0, 'plan': 'gold', 'address.city': 'Leeds', 'newsletter': 1.0})
    >>> view.record_from({"customer_id": "c-8", "signed_up": 1, "address": None}, key=None)
    Traceback (most recent call last):
    ...
    mlstream.features.view.RecordMismatch: address.city: missing (null or absent), and the view says missing: fail
    >>> view.label_from({"id": "c-7", "label": True, "event_time": 1700000005000}, key=b"c-7")
    ('c-7', True, 1700000005000)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from mlstream.config_store import ConfigNotFound, ConfigStore, open_config_store
from mlstream.errors import UserError
from mlstream.settings import SCHEMA_DIR, Settings, Topics
from mlstream.yaml_schema import compose_with_lines, schema_problems

SCHEMA_PATH = SCHEMA_DIR / "feature_view.schema.json"
#: Config ``featureview.NAME`` of the config store holds the versions of view NAME.
CONFIG_PREFIX = "featureview."
#: The project's own ``Record`` shape (``mlstream/schemas/record.avsc``); its version is ``builtin``.
DEFAULT_NAME = "default"
BUILTIN = "builtin"
DEFAULT_REF = f"{DEFAULT_NAME}@{BUILTIN}"
DEFAULT_VIEW_YAML = """\
description: The project's own Record shape (mlstream/schemas/record.avsc), a map of numeric features.
records:
  id: {field: id}
  event_time: {field: event_time}
features:
  - {path: features, type: number_map}
labels:
  id: {field: id}
  label: {field: label}
  event_time: {field: event_time}
"""

FEATURE_TYPES = ("number", "boolean", "categorical", "number_map")
KEY = "(Kafka key)"


class FeatureViewError(UserError):
    """The view's YAML is malformed or breaks its schema; the message lists every problem by line."""


class RecordMismatch(ValueError):
    """A decoded value that does not fit the view: ``field`` is its path, ``reason`` says why."""

    def __init__(self, field: str, reason: str):
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@dataclass(frozen=True)
class Feature:
    path: tuple[str, ...]
    name: str
    type: str  # one of FEATURE_TYPES
    missing: str = "skip"  # skip | fail | default
    default: Any = None


@dataclass(frozen=True)
class IdSource:
    """Where an id is: a field (its path) or, if ``path`` is None, the Kafka key."""

    path: tuple[str, ...] | None


@dataclass(frozen=True)
class FeatureView:
    name: str
    version: int | str
    records_topic: str
    record_id: IdSource
    event_time: tuple[str, ...]
    features: tuple[Feature, ...]
    labels_topic: str
    label_id: IdSource
    label: tuple[str, ...]
    label_time: tuple[str, ...]
    text: str

    @property
    def ref(self) -> str:
        """``NAME@VERSION``: what predictions and build manifests name the view by."""
        return f"{self.name}@{self.version}"

    @property
    def categoricals(self) -> tuple[str, ...]:
        """The names of the categorical features (strings in ``features``; the model spec one-hot encodes them)."""
        return tuple(f.name for f in self.features if f.type == "categorical")

    @classmethod
    def parse(cls, text: str, source: str, topics: Topics, *, name: str, version: int | str) -> "FeatureView":
        """Check a view's YAML and build it; topics it leaves out are the project's records and labels."""
        document, lines = compose_with_lines(text, source, FeatureViewError)
        if document is None:
            raise FeatureViewError(f"{source}: empty; a feature view needs records, features and labels "
                                   f"(see docs/feature-views.md)")
        problems = schema_problems(view_schema(), document, lines, source)
        if not problems:
            problems = _cross_key_problems(document, lines, source)
        if problems:
            raise FeatureViewError(f"feature view {name!r} is invalid:\n  " + "\n  ".join(problems))
        records, labels = document["records"], document["labels"]
        return cls(
            name=name,
            version=version,
            records_topic=records.get("topic", topics.records),
            record_id=_id_source(records["id"]),
            event_time=_path(records["event_time"]["field"]),
            features=tuple(_feature(raw) for raw in document["features"]),
            labels_topic=labels.get("topic", topics.labels),
            label_id=_id_source(labels["id"]),
            label=_path(labels["label"]["field"]),
            label_time=_path(labels["event_time"]["field"]),
            text=text,
        )

    def record_from(self, decoded: dict, key: bytes | None) -> dict:
        """``{"id", "event_time" (epoch ms), "features"}`` of one decoded record, or :class:`RecordMismatch`."""
        features: dict[str, Any] = {}
        for feature in self.features:
            value = lookup(decoded, feature.path)
            if value is None:
                if feature.missing == "fail":
                    raise RecordMismatch(feature.name, "missing (null or absent), and the view says missing: fail")
                if feature.missing == "default":
                    features[feature.name] = feature.default
                continue
            if feature.type == "number_map":
                if not isinstance(value, dict):
                    raise RecordMismatch(feature.name, f"expected a map of numbers, got {_shown(value)}")
                for entry, number in value.items():
                    features[entry] = _number(f"{feature.name}[{entry}]", number)
            else:
                features[feature.name] = CONVERT[feature.type](feature.name, value)
        return {"id": _id(self.record_id, decoded, key), "event_time": _time(self.event_time, decoded),
                "features": features}

    def label_from(self, decoded: dict, key: bytes | None) -> tuple[str, Any, int]:
        """``(record_id, label, event_time_ms)`` of one decoded label, or :class:`RecordMismatch`."""
        label = lookup(decoded, self.label)
        if label is None:
            raise RecordMismatch(".".join(self.label), "the label is missing (null or absent)")
        if not isinstance(label, (bool, int, float, str)):
            raise RecordMismatch(".".join(self.label), f"a label is a boolean, number or string, got {_shown(label)}")
        return _id(self.label_id, decoded, key), label, _time(self.label_time, decoded)


@cache
def view_schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text())


def default_view(topics: Topics) -> FeatureView:
    """The built-in view of the project's ``Record`` shape: every entry of ``features`` is a numeric feature."""
    return FeatureView.parse(DEFAULT_VIEW_YAML, "<built-in view>", topics, name=DEFAULT_NAME, version=BUILTIN)


def parse_ref(ref: str) -> tuple[str, int | None]:
    """``NAME`` or ``NAME@VERSION`` -> (name, version or None for the latest).

    >>> parse_ref("customers"), parse_ref("customers@3")
    (('customers', None), ('customers', 3))
    """
    name, _, version = ref.partition("@")
    if not name or (version and not version.isdigit()):
        raise UserError(f"feature view {ref!r}: give NAME or NAME@VERSION, e.g. customers@2")
    return name, int(version) if version else None


def load_feature_view(settings: Settings, store: ConfigStore | None = None, ref: str | None = None) -> FeatureView:
    """The view ``ref`` names (``NAME``, ``NAME@VERSION``; default: ``MLSTREAM_FEATURE_VIEW``), from the
    config store; unset, ``default`` or ``default@builtin`` is the built-in view."""
    ref = settings.feature_view if ref is None else ref
    if ref in ("", DEFAULT_NAME, DEFAULT_REF):
        return default_view(settings.topics)
    name, version = parse_ref(ref)
    try:
        stored = (store or open_config_store(settings)).get(CONFIG_PREFIX + name, version)
    except ConfigNotFound as err:
        raise ConfigNotFound(f"feature view {ref!r} is not stored ({err}); 'mlstream produce --csv' writes one for "
                             f"a CSV file, or leave MLSTREAM_FEATURE_VIEW empty for the built-in view") from err
    return FeatureView.parse(stored.text, f"{CONFIG_PREFIX}{name} v{stored.version}", settings.topics,
                             name=name, version=stored.version)


def lookup(decoded: dict, path: tuple[str, ...]) -> Any:
    """The value at a dotted path of nested records; None if absent or null on the way."""
    value: Any = decoded
    for part in path:
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


# ----- values, checked and converted -------------------------------------------------------

def _shown(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text[:40] + '...' if len(text) > 40 else text}"


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RecordMismatch(name, f"expected a number (int, long, float, double), got {_shown(value)}")
    return float(value)


def _boolean(name: str, value: Any) -> float:
    if not isinstance(value, bool):
        raise RecordMismatch(name, f"expected a boolean, got {_shown(value)}")
    return 1.0 if value else 0.0


def _categorical(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise RecordMismatch(name, f"expected a string or enum (categorical), got {_shown(value)}")
    return value


CONVERT = {"number": _number, "boolean": _boolean, "categorical": _categorical}


def _id(source: IdSource, decoded: dict, key: bytes | None) -> str:
    if source.path is None:
        if not key:
            raise RecordMismatch(KEY, "the view takes the id from the Kafka key, and the message has none")
        try:
            return key.decode("utf-8")
        except UnicodeDecodeError as err:
            raise RecordMismatch(KEY, f"the key is not UTF-8 text ({err})") from err
    value = lookup(decoded, source.path)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str) or not value:
        raise RecordMismatch(".".join(source.path), f"an id is a non-empty string or an integer, got {_shown(value)}")
    return value


def _time(path: tuple[str, ...], decoded: dict) -> int:
    value = lookup(decoded, path)
    if isinstance(value, datetime):  # timestamp-millis fields decode to datetimes
        return int(value.timestamp() * 1000)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise RecordMismatch(".".join(path), f"an event time is a timestamp-millis or long (epoch ms), got {_shown(value)}")


# ----- the document ------------------------------------------------------------------------

def _path(text: str) -> tuple[str, ...]:
    return tuple(text.split("."))


def _id_source(raw: dict) -> IdSource:
    return IdSource(_path(raw["field"]) if "field" in raw else None)


def _feature(raw: dict) -> Feature:
    missing = raw.get("missing", "default" if "default" in raw else "skip")
    default = raw.get("default")
    if default is not None and raw["type"] != "categorical":
        default = float(default)  # numbers and booleans reach the model as floats, defaults too
    return Feature(_path(raw["path"]), raw.get("name", raw["path"]), raw["type"], missing, default)


DEFAULT_TYPES = {"number": ((int, float), "a number"), "boolean": ((bool,), "true or false"),
                 "categorical": ((str,), "a string")}


def _cross_key_problems(document: dict, lines: dict[tuple, int], source: str) -> list[str]:
    """What the JSON Schema cannot say: defaults of the feature's type, names used once."""
    problems, seen = [], {}
    for i, raw in enumerate(document["features"]):
        where = f"{source}:{lines.get(('features', i), 0)}: features[{i}]"
        kind, missing, has_default = raw["type"], raw.get("missing"), "default" in raw
        if kind == "number_map":
            if has_default or missing == "default" or "name" in raw:
                problems.append(f"{where}: a number_map's entries are features named by their keys: it takes no "
                                f"name or default (missing: skip or fail)")
            continue
        if missing == "default" and not has_default:
            problems.append(f"{where}: missing: default needs a default value")
        if has_default and missing not in (None, "default"):
            problems.append(f"{where}: a default is used only with missing: default (this feature says {missing})")
        if has_default:
            types, text = DEFAULT_TYPES[kind]
            value = raw["default"]
            if not isinstance(value, types) or (kind == "number" and isinstance(value, bool)):
                problems.append(f"{where}.default: a {kind} feature's default is {text}, got {value!r}")
        name = raw.get("name", raw["path"])
        if name in seen:
            problems.append(f"{where}: feature name {name!r} is used twice (also features[{seen[name]}]); "
                            f"give one a name")
        seen.setdefault(name, i)
    return problems
