"""A user's CSV file as a live feed: its Avro schema inferred (or given), a matching feature view, its rows.

:func:`read_csv` reads the file and sorts its rows into good ones and malformed ones, each
malformed row with its line number and the reason. The record schema is inferred from the
good rows (:func:`infer_layout`) or taken from an ``.avsc`` file (:func:`layout_from_schema`):

* a column whose values are all integers is a ``long``, numbers a ``double``, ``true``/``false``
  a ``boolean``; a column of at most 12 distinct values, each a valid Avro name and each seen
  5 times on average, an ``enum``; anything else a ``string``. At most 1% of a column's values
  may break its type: those rows are malformed (a typo does not turn a number column into text);
* a column with an empty cell is nullable (``["null", T]``, default null);
* a dotted column name (``address.city``) is a field of a nested record (``address``);
* the id column is a string, the time column a ``timestamp-millis`` (epoch ms or ISO 8601);
  without a time column the record gets an ``event_time`` set when the row is sent;
* the label column is not in the record: it is sent later, to the labels topic.

:func:`view_yaml` writes the feature view that reads such records: every other column is a
feature (numbers and booleans as numbers, strings and enums as categoricals), except string
columns of nearly unique values (names, e-mails), which it lists as comments.

    >>> import io
    >>> text = "id,age,plan,address.city,churned\\n1,41,gold,Leeds,true\\n2,,basic,York,false\\n3,x,y\\n"
    >>> table = read_csv(io.StringIO(text), "c.csv", id_column="id", label_column="churned")
    >>> [(bad.line, bad.reason) for bad in table.malformed]
    [(4, 'expected 5 fields, got 3')]
    >>> layout = infer_layout(table, "customers")
    >>> [(c.header, c.type, c.nullable) for c in layout.columns]
    [('id', 'string', False), ('age', 'long', True), ('plan', 'string', False), ('address.city', 'string', False)]
    >>> layout.schema["fields"][-1]["name"], layout.label_type
    ('event_time', 'boolean')
    >>> rows, bad = convert_rows(table, layout)
    >>> rows[1]
    ('2', {'id': '2', 'age': None, 'plan': 'basic', 'address': {'city': 'York'}}, False)
"""

from __future__ import annotations

import csv
import json
import math
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, TextIO

import yaml
from confluent_kafka import KafkaException
from confluent_kafka.schema_registry.error import SchemaRegistryError

from mlstream.config_store import open_config_store
from mlstream.errors import UserError
from mlstream.features.view import CONFIG_PREFIX, FeatureView, lookup
from mlstream.kafka import clients
from mlstream.kafka.producer import AvroProducer
from mlstream.kafka.serde import TopicCodec, value_subject
from mlstream.kafka.topics import TopicSpec, create_topics, project_topics, register_value_schema, topic_codec
from mlstream.lineage.feeds import FeedLineage
from mlstream.settings import Settings
from producers.feed import FeedStats, play_records

#: What ``event_time`` is when the CSV has no time column: the moment the row is sent.
STAMPED_TIME_FIELD = "event_time"
ENUM_MAX_SYMBOLS = 12
ENUM_MIN_MEAN_COUNT = 5
#: The share of a column's values that may break its inferred type (those rows are malformed).
TYPE_TOLERANCE = 0.01
#: A string column with more distinct values than this share of its rows is an identifier, not a feature.
NEAR_UNIQUE = 0.5
TRUE, FALSE = {"true", "yes"}, {"false", "no"}
_INTEGER = re.compile(r"^[+-]?\d+$")
_LEADING_ZERO = re.compile(r"^[+-]?0\d")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
LONG_RANGE = (-(2 ** 63), 2 ** 63 - 1)


class CsvError(UserError):
    pass


@dataclass(frozen=True)
class BadRow:
    line: int
    reason: str


@dataclass
class CsvTable:
    source: str
    header: list[str]
    rows: list[tuple[int, dict[str, str]]]  # (line number, header -> cell) of the well-formed rows
    malformed: list[BadRow]
    id_column: str
    label_column: str
    time_column: str | None


@dataclass(frozen=True)
class Column:
    header: str
    path: tuple[str, ...]
    type: str  # long | double | boolean | string | enum | timestamp
    nullable: bool = False
    symbols: tuple[str, ...] = ()
    distinct: int = 0


@dataclass(frozen=True)
class CsvLayout:
    """What a CSV's rows become: the record schema, its columns, the label's type."""

    name: str
    schema: dict
    columns: tuple[Column, ...]
    id_column: str
    label_column: str
    label_type: str  # boolean | long | double | string
    time_column: str | None
    rows: int = 0  # well-formed rows the layout was inferred from (0: given by a schema file)
    ignored: tuple[str, ...] = field(default=())  # CSV columns the given schema has no field for
    records: tuple[tuple[str, ...], ...] = field(default=())  # paths of the nested records every value has

    @property
    def id_path(self) -> tuple[str, ...]:
        return next(c.path for c in self.columns if c.header == self.id_column)

    @property
    def stamped(self) -> bool:
        """Whether the record's ``event_time`` is set when it is sent (the CSV has no time column)."""
        return self.time_column is None


# ----- reading -----------------------------------------------------------------------------

def read_csv(file: TextIO, source: str, *, id_column: str, label_column: str,
             time_column: str | None = None) -> CsvTable:
    """The rows of a CSV with a header line; rows of the wrong width or without an id or label are malformed."""
    reader = csv.reader(file)
    try:
        header = next(reader)
    except StopIteration:
        raise CsvError(f"{source}: empty file; expected a header line, then one row per record") from None
    except csv.Error as err:
        raise CsvError(f"{source}:1: {err}") from err
    header = [h.strip() for h in header]
    duplicates = sorted(h for h, n in Counter(header).items() if n > 1)
    if duplicates:
        raise CsvError(f"{source}:1: column(s) {', '.join(duplicates)} appear more than once in the header")
    for role, column in (("--id-column", id_column), ("--label-column", label_column), ("--time-column", time_column)):
        if column is not None and column not in header:
            raise CsvError(f"{source}:1: {role} {column!r} is not a column (columns: {', '.join(header)})")
    if len({id_column, label_column, time_column} - {None}) < len([c for c in (id_column, label_column, time_column)
                                                                   if c]):
        raise CsvError("--id-column, --label-column and --time-column must name different columns")
    rows, malformed, first_line_of = [], [], {}
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as err:
            malformed.append(BadRow(reader.line_num, str(err)))
            continue
        line = reader.line_num
        if not cells:
            continue  # a blank line
        if len(cells) != len(header):
            malformed.append(BadRow(line, f"expected {len(header)} fields, got {len(cells)}"))
            continue
        row = {h: c.strip() for h, c in zip(header, cells)}
        if not row[id_column]:
            malformed.append(BadRow(line, f"the id column {id_column!r} is empty"))
        elif row[id_column] in first_line_of:
            first = first_line_of[row[id_column]]
            malformed.append(BadRow(line, f"id {row[id_column]!r} again (first on line {first})"))
        elif not row[label_column]:
            malformed.append(BadRow(line, f"the label column {label_column!r} is empty"))
        else:
            first_line_of[row[id_column]] = line
            rows.append((line, row))
    return CsvTable(source, header, rows, malformed, id_column, label_column, time_column)


def open_csv(path: Path, **columns) -> CsvTable:
    try:
        with path.open(encoding="utf-8-sig", newline="") as file:
            return read_csv(file, str(path), **columns)
    except OSError as err:
        raise CsvError(f"cannot read {path}: {err.strerror}") from err
    except UnicodeDecodeError as err:
        raise CsvError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from err


# ----- cells -------------------------------------------------------------------------------

def parse_cell(text: str, kind: str, symbols: tuple[str, ...] = ()) -> Any:
    """The value of a non-empty cell as a field of ``kind``; ValueError saying why not.

    >>> parse_cell("2024-05-01T12:00:00Z", "timestamp"), parse_cell("Yes", "boolean"), parse_cell("7", "double")
    (1714564800000, True, 7.0)
    >>> parse_cell("nan", "double")
    Traceback (most recent call last):
    ...
    ValueError: 'nan' is not a finite number
    """
    match kind:
        case "long":
            if not _INTEGER.match(text) or not LONG_RANGE[0] <= int(text) <= LONG_RANGE[1]:
                raise ValueError(f"{text!r} is not an integer")
            return int(text)
        case "double":
            try:
                number = float(text)
            except ValueError:
                raise ValueError(f"{text!r} is not a number") from None
            if not math.isfinite(number):
                raise ValueError(f"{text!r} is not a finite number")
            return number
        case "boolean":
            if text.lower() in TRUE | FALSE:
                return text.lower() in TRUE
            raise ValueError(f"{text!r} is not a boolean (true, false, yes, no)")
        case "enum":
            if text not in symbols:
                raise ValueError(f"{text!r} is not one of {', '.join(symbols)}")
            return text
        case "timestamp":
            if _INTEGER.match(text):
                return int(text)
            try:
                when = datetime.fromisoformat(text)
            except ValueError:
                raise ValueError(f"{text!r} is not a time (epoch milliseconds or ISO 8601)") from None
            if when.tzinfo is None:
                when = when.replace(tzinfo=timezone.utc)
            return int(when.timestamp() * 1000)
        case _:
            return text


def label_type(values: Iterable[str]) -> str:
    """The type every label value has: boolean, long, double, or else string.

    >>> label_type(["True", "false"]), label_type(["1", "0"]), label_type(["0.5", "2"]), label_type(["yes", "x"])
    ('boolean', 'long', 'double', 'string')
    """
    values = list(values)
    for kind in ("boolean", "long", "double"):
        if all(_parses(v, kind) for v in values):
            return kind
    return "string"


def _parses(text: str, kind: str) -> bool:
    try:
        parse_cell(text, kind)
        return True
    except ValueError:
        return False


# ----- the layout: inferred or given ---------------------------------------------------------

def field_path(header: str) -> tuple[str, ...]:
    """The Avro field path of a column: dots nest, other characters Avro names refuse become ``_``.

    >>> field_path("address.city"), field_path("monthly fee ($)"), field_path("2nd")
    (('address', 'city'), ('monthly_fee____',), ('_2nd',))
    """
    parts = []
    for part in header.split("."):
        name = re.sub(r"[^A-Za-z0-9_]", "_", part) or "_"
        parts.append(name if not name[0].isdigit() else f"_{name}")
    return tuple(parts)


def infer_layout(table: CsvTable, name: str) -> CsvLayout:
    """The record schema and feature columns of a table's well-formed rows."""
    columns = []
    for header in table.header:
        if header == table.label_column:
            continue
        values = [row[header] for _, row in table.rows if row[header]]
        nullable = len(values) < len(table.rows)
        if header == table.id_column:
            columns.append(Column(header, field_path(header), "string", distinct=len(set(values))))
        elif header == table.time_column:
            columns.append(Column(header, field_path(header), "timestamp", nullable))
        else:
            columns.append(_infer_column(header, values, nullable))
    labels = [row[table.label_column] for _, row in table.rows]
    return _layout(table, name, columns, label_type(labels), rows=len(table.rows))


def _infer_column(header: str, values: list[str], nullable: bool) -> Column:
    allowed = math.floor(len(values) * TYPE_TOLERANCE)
    # digits with a leading zero (zip codes, account numbers) are text: as numbers they would lose it
    kinds = ("boolean",) if any(_LEADING_ZERO.match(v) for v in values) else ("boolean", "long", "double")
    for kind in kinds:
        if values and sum(not _parses(v, kind) for v in values) <= allowed:
            return Column(header, field_path(header), kind, nullable)
    counts = Counter(values)
    if (0 < len(counts) <= ENUM_MAX_SYMBOLS and all(_NAME.match(v) for v in counts)
            and len(values) >= ENUM_MIN_MEAN_COUNT * len(counts)):
        return Column(header, field_path(header), "enum", nullable, tuple(sorted(counts)), len(counts))
    return Column(header, field_path(header), "string", nullable, distinct=len(counts))


def layout_from_schema(table: CsvTable, name: str, schema: dict, source: str) -> CsvLayout:
    """The layout of a table whose record schema is given (an ``.avsc``): columns match fields by path."""
    if not isinstance(schema, dict) or schema.get("type") != "record":
        raise CsvError(f"{source}: the schema must be an Avro record")
    flat = list(_flatten(schema, (), source))
    fields = {path: kind for path, kind in flat if kind[0] != "record"}
    by_path = {field_path(h): h for h in table.header if h != table.label_column}
    stamped = table.time_column is None
    missing = [".".join(p) for p, (_, nullable, _) in fields.items()
               if p not in by_path and not nullable and not (stamped and p == (STAMPED_TIME_FIELD,))]
    if missing:
        raise CsvError(f"{source}: field(s) {', '.join(missing)} are neither nullable nor a column of {table.source}")
    columns = []
    for path, header in by_path.items():
        if path not in fields:
            continue
        kind, nullable, symbols = fields[path]
        if header == table.time_column and kind != "timestamp":
            raise CsvError(f"{source}: the time column's field {'.'.join(path)} must be a long with logicalType "
                           f"timestamp-millis")
        if header == table.id_column and kind not in ("string", "long"):
            raise CsvError(f"{source}: the id column's field {'.'.join(path)} must be a string or a long")
        columns.append(Column(header, path, kind, nullable, symbols))
    if stamped and (STAMPED_TIME_FIELD,) not in fields:
        raise CsvError(f"{source}: without --time-column the schema needs a field "
                       f"{{\"name\": \"{STAMPED_TIME_FIELD}\", \"type\": {{\"type\": \"long\", "
                       f"\"logicalType\": \"timestamp-millis\"}}}} (set when each row is sent)")
    ignored = tuple(h for p, h in by_path.items() if p not in fields)
    labels = [row[table.label_column] for _, row in table.rows]
    return CsvLayout(name, schema, tuple(columns), table.id_column, table.label_column, label_type(labels),
                     table.time_column, ignored=ignored,
                     records=tuple(path for path, kind in flat if kind == ("record", False, ())))


def _flatten(schema: dict, prefix: tuple[str, ...], source: str) -> Iterable[tuple[tuple[str, ...], tuple]]:
    """(path, (kind, nullable, symbols)) of every field of a record schema: nested records
    (kind ``record``, before their fields), then leaves."""
    for f in schema["fields"]:
        path, kind = (*prefix, f["name"]), f["type"]
        nullable = isinstance(kind, list) and "null" in kind
        if isinstance(kind, list):
            branches = [k for k in kind if k != "null"]
            if len(branches) != 1:
                raise CsvError(f"{source}: field {'.'.join(path)}: only unions of null and one type come from CSV")
            kind = branches[0]
        spec = kind if isinstance(kind, dict) else {"type": kind}
        match spec["type"]:
            case "record":
                yield path, ("record", nullable, ())
                yield from _flatten(spec, path, source)
            case "long" | "int" if spec.get("logicalType") in ("timestamp-millis", "timestamp-micros"):
                if spec.get("logicalType") != "timestamp-millis":
                    raise CsvError(f"{source}: field {'.'.join(path)}: use timestamp-millis")
                yield path, ("timestamp", nullable, ())
            case "long" | "int":
                yield path, ("long", nullable, ())
            case "double" | "float":
                yield path, ("double", nullable, ())
            case "boolean" | "string":
                yield path, (spec["type"], nullable, ())
            case "enum":
                yield path, ("enum", nullable, tuple(spec["symbols"]))
            case other:
                raise CsvError(f"{source}: field {'.'.join(path)} is {other!r}: a CSV column holds a number, "
                               f"boolean, string, enum or timestamp")


AVRO_TYPES = {"long": "long", "double": "double", "boolean": "boolean", "string": "string",
              "timestamp": {"type": "long", "logicalType": "timestamp-millis"}}


def _layout(table: CsvTable, name: str, columns: list[Column], label_kind: str, rows: int) -> CsvLayout:
    paths = Counter(c.path for c in columns)
    clashing = [c.header for c in columns if paths[c.path] > 1]
    if clashing:
        raise CsvError(f"{table.source}:1: columns {', '.join(clashing)} become the same Avro field; rename one")
    stamped = table.time_column is None
    if stamped and any(c.path[0] == STAMPED_TIME_FIELD for c in columns):
        raise CsvError(f"{table.source}:1: a column is named {STAMPED_TIME_FIELD!r}: give it as --time-column, "
                       f"or rename it (without a time column the record gets {STAMPED_TIME_FIELD} when sent)")
    record_name = _record_name(name)
    root: dict = {"type": "record", "name": record_name, "namespace": "io.mlstream.csv",
                  "doc": f"Rows of {Path(table.source).name}, as inferred by 'mlstream produce --csv'.", "fields": []}
    records = {(): root}
    for column in columns:
        for depth in range(1, len(column.path)):
            path = column.path[:depth]
            if path not in records:
                nested = {"type": "record", "name": _record_name("_".join(path)), "fields": []}
                records[path[:-1]]["fields"].append({"name": path[-1], "type": nested})
                records[path] = nested
        kind = ({"type": "enum", "name": _record_name("_".join(column.path)) + "Value",
                 "symbols": list(column.symbols)} if column.type == "enum" else AVRO_TYPES[column.type])
        entry = {"name": column.path[-1], "type": ["null", kind] if column.nullable else kind}
        if column.nullable:
            entry["default"] = None
        records[column.path[:-1]]["fields"].append(entry)
    if stamped:
        root["fields"].append({"name": STAMPED_TIME_FIELD, "type": AVRO_TYPES["timestamp"],
                               "doc": "When the row was sent (the CSV has no time column)."})
    return CsvLayout(name, root, tuple(columns), table.id_column, table.label_column, label_kind,
                     table.time_column, rows=rows)


def _record_name(text: str) -> str:
    name = "".join(part[:1].upper() + part[1:] for part in re.split(r"[^A-Za-z0-9]+", text) if part)
    return name if name and not name[0].isdigit() else f"R{name}"


# ----- rows --------------------------------------------------------------------------------

def convert_rows(table: CsvTable, layout: CsvLayout) -> tuple[list[tuple[str, dict, Any]], list[BadRow]]:
    """``(record id, record value, label)`` of each row that fits the layout, and the rows that do not."""
    good, bad = [], []
    for line, row in table.rows:
        try:
            good.append(convert_row(row, layout))
        except ValueError as err:
            bad.append(BadRow(line, str(err)))
    return good, bad


def convert_row(row: dict[str, str], layout: CsvLayout) -> tuple[str, dict, Any]:
    value: dict = {}
    for path in layout.records:  # a nested record without columns still has to be there (its fields nullable)
        target = value
        for part in path:
            target = target.setdefault(part, {})
    for column in layout.columns:
        text = row[column.header]
        if not text:
            if not column.nullable:
                raise ValueError(f"column {column.header!r} is empty and its field is not nullable")
            cell = None
        else:
            try:
                cell = parse_cell(text, column.type, column.symbols)
            except ValueError as err:
                raise ValueError(f"column {column.header!r}: {err} (the field is {column.type})") from None
        target = value
        for part in column.path[:-1]:
            target = target.setdefault(part, {})
        target[column.path[-1]] = cell
    record_id = str(lookup(value, layout.id_path))
    try:
        label = parse_cell(row[layout.label_column], layout.label_type)
    except ValueError as err:
        raise ValueError(f"label column {layout.label_column!r}: {err}") from None
    return record_id, value, label


# ----- the feature view --------------------------------------------------------------------

FEATURE_TYPE = {"long": "number", "double": "number", "boolean": "boolean", "string": "categorical",
                "enum": "categorical"}


def feature_columns(layout: CsvLayout) -> tuple[list[Column], list[Column]]:
    """(the columns that are features, the string columns left out as near-unique identifiers)."""
    features, left_out = [], []
    for column in layout.columns:
        if column.header in (layout.id_column, layout.time_column):
            continue
        if column.type == "string" and layout.rows and column.distinct > NEAR_UNIQUE * layout.rows:
            left_out.append(column)
        else:
            features.append(column)
    return features, left_out


def view_yaml(layout: CsvLayout, records_topic: str, labels_topic: str) -> str:
    """The feature view of a CSV's records: ids and times as the layout has them, labels from the labels topic."""
    features, left_out = feature_columns(layout)
    if not features:
        raise CsvError(f"{layout.name}: no column is left to be a feature (besides id, time and label)")
    time_path = STAMPED_TIME_FIELD if layout.stamped else ".".join(
        next(c.path for c in layout.columns if c.header == layout.time_column))
    document = {
        "description": f"Written by 'mlstream produce --csv' for {layout.name}; edit it and store it again with "
                       f"'mlstream config put featureview.{layout.name} FILE'.",
        "records": {"topic": records_topic, "id": {"field": ".".join(layout.id_path)},
                    "event_time": {"field": time_path}},
        "features": [{"path": ".".join(c.path), "type": FEATURE_TYPE[c.type]} for c in features],
        "labels": {"topic": labels_topic, "id": {"field": "id"}, "label": {"field": "label"},
                   "event_time": {"field": "event_time"}},
    }
    text = yaml.safe_dump(document, sort_keys=False, width=120, default_flow_style=None)
    if left_out:
        text += "# Left out: string columns of nearly unique values (identifiers, not features). Add any back above.\n"
        text += "".join(f"#  - {{path: {'.'.join(c.path)}, type: categorical}}  # {c.distinct} distinct values in "
                        f"{layout.rows} rows\n" for c in left_out)
    return text


# ----- Kafka -------------------------------------------------------------------------------

class CsvFeedSink:
    """Sends a CSV's records to its topic (keyed by record id) and its labels to the labels topic."""

    def __init__(self, settings: Settings, topic: str, layout: CsvLayout):
        client = clients.registry_client(settings)
        self.records = TopicCodec.for_schema(client, topic, json.dumps(layout.schema))
        self.labels = topic_codec(client, settings, settings.topics.labels)
        self.id_path = layout.id_path
        self.producer = AvroProducer(settings)

    def send_record(self, record: dict) -> None:
        self.producer.send(self.records, str(lookup(record, self.id_path)).encode(), record)

    def send_label(self, label: dict) -> None:
        self.producer.send(self.labels, label["id"].encode(), label)

    def flush(self) -> None:
        self.producer.flush()



# ----- the whole command -------------------------------------------------------------------

#: Malformed rows named one by one before the rest are only counted.
SHOWN_MALFORMED = 20


@dataclass
class CsvFeedResult:
    topic: str
    schema_version: int
    view_ref: str
    view_file: Path
    rows: int  # data rows in the file (well-formed or not)
    malformed: list[BadRow]
    stats: FeedStats

    def summary(self) -> dict:
        return {"topic": self.topic, "schema_version": self.schema_version, "feature_view": self.view_ref,
                "view_file": str(self.view_file), "rows": self.rows, "records": self.stats.records,
                "labels": self.stats.labels, "malformed": len(self.malformed),
                "malformed_lines": [bad.line for bad in self.malformed], "seconds": round(self.stats.seconds, 3),
                "records_per_second": round(self.stats.records_per_second, 1)}


def view_name(path: Path) -> str:
    """The feature view (and default topic) name of a CSV file: its stem, in letters, digits, '.', '_', '-'.

    >>> view_name(Path("data/My Customers.csv"))
    'My-Customers'
    """
    return re.sub(r"[^A-Za-z0-9._-]+", "-", path.stem).strip("-.") or "csv"


@dataclass
class CsvFeed:
    """A CSV file read and checked, before anything is sent: its layout, the rows that fit it, the malformed ones."""

    path: Path
    name: str  # of its feature view, and of its topic by default
    layout: CsvLayout
    rows: list[tuple[str, dict, Any]]  # (record id, record value, label) in file order
    malformed: list[BadRow]

    @property
    def total_rows(self) -> int:
        """Data rows in the file, well-formed or not."""
        return len(self.rows) + len(self.malformed)


@dataclass(frozen=True)
class PreparedCsv:
    """A CSV feed whose topic, record schema and feature view are in place: what playing it needs."""

    feed: CsvFeed
    topic: str
    schema_version: int
    view_name: str
    view_ref: str
    view_file: Path


def load_csv_feed(path: Path, *, id_column: str, label_column: str, time_column: str | None = None,
                  schema_path: Path | None = None, strict: bool = False,
                  say: Callable[[str], None] = print) -> CsvFeed:
    """Read a CSV and infer its layout (or take it from ``schema_path``); no broker or registry is asked.

    A malformed row is named with its line and skipped, or with ``strict`` stops here, before anything is sent.
    """
    table = open_csv(path, id_column=id_column, label_column=label_column, time_column=time_column)
    name = view_name(path)
    if schema_path is None:
        layout = infer_layout(table, name)
    else:
        layout = layout_from_schema(table, name, _read_schema(schema_path), str(schema_path))
        for header in layout.ignored:
            say(f"{path}: column {header!r} has no field in {schema_path}: not sent")
    rows, bad = convert_rows(table, layout)
    malformed = sorted(table.malformed + bad, key=lambda b: b.line)
    if malformed and strict:
        first = malformed[0]
        raise CsvError(f"{path}:{first.line}: {first.reason} (--strict: nothing was sent; "
                       f"{len(malformed)} malformed row(s) in all)")
    for row in malformed[:SHOWN_MALFORMED]:
        say(f"{path}:{row.line}: {row.reason}: row skipped")
    if len(malformed) > SHOWN_MALFORMED:
        say(f"{path}: ... and {len(malformed) - SHOWN_MALFORMED} more malformed rows skipped")
    if not rows:
        raise CsvError(f"{path}: no well-formed row to send ({len(malformed)} malformed)")
    return CsvFeed(path, name, layout, rows, malformed)


def prepare_csv(settings: Settings, feed: CsvFeed, *, topic: str | None = None,
                say: Callable[[str], None] = print) -> PreparedCsv:
    """Create the feed's topic, register its record schema (BACKWARD) and store its feature view."""
    path, name, layout = feed.path, feed.name, feed.layout
    topic = topic or f"{settings.topics.prefix}{name}"
    if topic in {spec.name for spec in project_topics(settings)}:
        raise CsvError(f"topic {topic} is one of the project's own topics: give the CSV's records a topic of their "
                       f"own (--topic)")
    admin = clients.admin(settings)
    try:
        existing = admin.list_topics(timeout=15).topics
    except KafkaException as err:
        raise CsvError(f"no Kafka at {settings.bootstrap_servers} ({err}): start it with 'mlstream up'") from err
    if settings.topics.labels not in existing:
        raise CsvError(f"topic {settings.topics.labels} is missing: run 'mlstream init' first")
    create_topics(admin, [TopicSpec(topic, settings.partitions, None)], say)
    registry = clients.registry_client(settings)
    try:
        version = register_value_schema(registry, topic, json.dumps(layout.schema), say)
    except SchemaRegistryError as err:
        raise CsvError(f"the registry refused the schema of {path} for {value_subject(topic)} ({err.error_message}): "
                       f"a schema registered there before must be able to read this one's records (BACKWARD); "
                       f"give another --topic or a compatible --schema") from err

    text = view_yaml(layout, topic, settings.topics.labels)
    view = FeatureView.parse(text, f"the view written for {path}", settings.topics, name=name, version="new")
    view_version = open_config_store(settings).put(CONFIG_PREFIX + name, text)
    view_file = settings.state_dir / "views" / f"{name}.yaml"
    view_file.parent.mkdir(parents=True, exist_ok=True)
    view_file.write_text(text)
    say(f"feature view {name}@{view_version} ({len(view.features)} features, {len(view.categoricals)} categorical; "
        f"config {CONFIG_PREFIX}{name}, a copy in {view_file}): score it with MLSTREAM_FEATURE_VIEW={name} "
        f"mlstream app")
    return PreparedCsv(feed, topic, version, name, f"{name}@{view_version}", view_file)


def play_csv(settings: Settings, prepared: PreparedCsv, *, rate: float = 0.0, label_delay_s: float = 1.0,
             limit: int | None = None, ready: Callable[[int], bool] | None = None,
             say: Callable[[str], None] = print) -> CsvFeedResult:
    """Play a prepared CSV's rows as a live feed, each label ``label_delay_s`` after its record, with its lineage.

    ``ready``: as :func:`producers.feed.play_records` takes it (the demo's gate on what the app has learned).
    """
    feed = prepared.feed
    lineage = FeedLineage(settings, source=f"csv/{feed.path.name}", seed=None,
                          started_at_ms=time.time_ns() // 1_000_000, warn=say, records_topic=prepared.topic)
    lineage.start()
    stats = play_records(feed.rows, CsvFeedSink(settings, prepared.topic, feed.layout), name=feed.name,
                         stamp=STAMPED_TIME_FIELD if feed.layout.stamped else None, rate=rate,
                         label_delay_s=label_delay_s, limit=limit, progress=say, ready=ready)
    lineage.finish(stats.records)
    return CsvFeedResult(prepared.topic, prepared.schema_version, prepared.view_ref, prepared.view_file,
                         feed.total_rows, feed.malformed, stats)


def produce_csv(settings: Settings, path: Path, *, id_column: str, label_column: str, time_column: str | None = None,
                schema_path: Path | None = None, strict: bool = False, topic: str | None = None,
                rate: float = 0.0, label_delay_s: float = 1.0, limit: int | None = None,
                say: Callable[[str], None] = print) -> CsvFeedResult:
    """Read a CSV, register its record schema, store its feature view, and play it with delayed labels.

    Every row is checked before anything is sent: a malformed row is named with its line and
    skipped, or with ``strict`` stops the command before it sends anything.
    """
    feed = load_csv_feed(path, id_column=id_column, label_column=label_column, time_column=time_column,
                         schema_path=schema_path, strict=strict, say=say)
    prepared = prepare_csv(settings, feed, topic=topic, say=say)
    return play_csv(settings, prepared, rate=rate, label_delay_s=label_delay_s, limit=limit, say=say)


def _read_schema(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except OSError as err:
        raise CsvError(f"cannot read {path}: {err.strerror}") from err
    except ValueError as err:
        raise CsvError(f"{path}: not a JSON Avro schema ({err})") from err
