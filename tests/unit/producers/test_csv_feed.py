"""A CSV file's schema inference, malformed rows, a given schema, and the feature view written for it."""

import io
from pathlib import Path

import fastavro
import pytest

from mlstream.features.view import FeatureView
from mlstream.settings import Topics
from producers.csv_feed import (CsvError, convert_rows, infer_layout, layout_from_schema, read_csv, view_name,
                                view_yaml)

HEADER = "customer_id,name,plan,fee,calls,address.city,address.zip,signed_up,churned\n"


def customers_csv(n: int = 60) -> str:
    plans, cities = ["basic", "gold", "trial"], ["Leeds", "New York", "São Paulo"]
    lines = [f"c{i},Person {i},{plans[i % 3]},{10 + i * 0.5},{'' if i % 4 == 0 else i % 7},{cities[i % 3]},"
             f"0{1000 + i},2025-01-01T00:{i % 60:02d}:00Z,{'yes' if i % 3 == 0 else 'no'}\n" for i in range(n)]
    return HEADER + "".join(lines)


def table_of(text: str, **columns):
    columns = {"id_column": "customer_id", "label_column": "churned", "time_column": "signed_up", **columns}
    return read_csv(io.StringIO(text), "customers.csv", **columns)


def test_types_nullability_enums_and_nesting_are_inferred():
    layout = infer_layout(table_of(customers_csv()), "customers")
    kinds = {c.header: (c.type, c.nullable) for c in layout.columns}
    assert kinds == {"customer_id": ("string", False), "name": ("string", False), "plan": ("enum", False),
                     "fee": ("double", False), "calls": ("long", True), "address.city": ("string", False),
                     "address.zip": ("string", False),  # leading zeros: text, not a number
                     "signed_up": ("timestamp", False)}
    assert layout.label_type == "boolean" and "churned" not in kinds
    fields = {f["name"]: f["type"] for f in layout.schema["fields"]}
    assert fields["calls"] == ["null", "long"] and fields["plan"]["symbols"] == ["basic", "gold", "trial"]
    assert [f["name"] for f in fields["address"]["fields"]] == ["city", "zip"]
    assert fields["signed_up"] == {"type": "long", "logicalType": "timestamp-millis"}
    fastavro.parse_schema(layout.schema)  # a valid Avro schema


def test_malformed_rows_are_named_by_line_and_the_rest_kept():
    rows = customers_csv(200).splitlines(keepends=True)
    rows[5] = "c4x,too,few\n"                                       # line 6: wrong width
    rows[9] = rows[9].replace("c8,", ",", 1)                        # line 10: no id
    rows[12] = rows[12].replace("c11,", "c3,", 1)                   # line 13: the id of line 5 again
    rows[20] = rows[20].rsplit(",", 1)[0] + ",\n"                   # line 21: no label
    rows[30] = rows[30].replace(",2025-01-01T", ",yesterday-", 1)   # line 31: not a time
    rows[40] = rows[40].replace("Person 39,basic,29.5", "Person 39,basic,lots", 1)  # line 41: a typo in a number
    table = table_of("".join(rows))
    layout = infer_layout(table, "customers")
    good, bad = convert_rows(table, layout)
    malformed = sorted(table.malformed + bad, key=lambda b: b.line)
    assert [(b.line, b.reason.split(" (")[0]) for b in malformed] == [
        (6, "expected 9 fields, got 3"),
        (10, "the id column 'customer_id' is empty"),
        (13, "id 'c3' again"),
        (21, "the label column 'churned' is empty"),
        (31, "column 'signed_up': 'yesterday-00:29:00Z' is not a time"),
        (41, "column 'fee': 'lots' is not a number"),
    ]
    assert len(good) == 200 - 6
    assert {c.header: c.type for c in layout.columns}["fee"] == "double"  # one typo in 200 keeps it a number


def test_a_column_of_mixed_values_is_text():
    text = HEADER + "".join(f"c{i},n,basic,{'x' if i % 3 == 0 else i},1,Leeds,01,{i},no\n" for i in range(30))
    layout = infer_layout(table_of(text), "t")
    assert {c.header: c.type for c in layout.columns}["fee"] == "string"
    assert {c.header: c.type for c in layout.columns}["signed_up"] == "timestamp"  # epoch ms


def test_without_a_time_column_the_record_is_stamped_when_sent():
    layout = infer_layout(table_of(customers_csv(), time_column=None), "customers")
    assert layout.stamped and layout.schema["fields"][-1]["name"] == "event_time"
    assert {c.header: c.type for c in layout.columns}["signed_up"] == "string"


def test_header_problems_are_clear_errors():
    with pytest.raises(CsvError, match="--label-column 'label' is not a column"):
        table_of(customers_csv(), label_column="label")
    with pytest.raises(CsvError, match="empty file"):
        table_of("")
    with pytest.raises(CsvError, match="appear more than once"):
        table_of("a,a,b\n1,2,3\n", id_column="a", label_column="b")
    clash = "id,monthly fee,monthly_fee,y\n1,2,3,true\n"
    with pytest.raises(CsvError, match="become the same Avro field"):
        infer_layout(table_of(clash, id_column="id", label_column="y", time_column=None), "t")


def test_the_view_written_reads_the_records_as_avro_carries_them():
    table = table_of(customers_csv())
    layout = infer_layout(table, "customers")
    text = view_yaml(layout, "t.customers", "t.labels")
    view = FeatureView.parse(text, "customers.view.yaml", Topics(prefix="t."), name="customers", version=1)
    assert [f.name for f in view.features] == ["plan", "fee", "calls", "address.city"]
    assert view.categoricals == ("plan", "address.city")
    assert "#  - {path: name, type: categorical}  # 60 distinct values in 60 rows" in text
    assert "#  - {path: address.zip, type: categorical}  # 60 distinct values in 60 rows" in text
    good, _ = convert_rows(table, layout)
    record_id, value, label = good[4]
    schema = fastavro.parse_schema(layout.schema)
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, schema, value)
    decoded = fastavro.schemaless_reader(io.BytesIO(buffer.getvalue()), schema, None)
    record = view.record_from(decoded, record_id.encode())
    assert record["id"] == "c4" and label is False
    assert record["features"] == {"plan": "gold", "fee": 12.0, "address.city": "New York"}  # calls: null, skipped
    assert record["event_time"] == 1735689840000


def test_a_given_schema_types_the_columns():
    schema = {"type": "record", "name": "C", "fields": [
        {"name": "customer_id", "type": "string"},
        {"name": "plan", "type": {"type": "enum", "name": "P", "symbols": ["basic", "gold"]}},
        {"name": "fee", "type": "float"},
        {"name": "address", "type": {"type": "record", "name": "A", "fields": [
            {"name": "city", "type": ["null", "string"], "default": None}]}},
        {"name": "signed_up", "type": {"type": "long", "logicalType": "timestamp-millis"}}]}
    table = table_of(customers_csv(9))
    layout = layout_from_schema(table, "customers", schema, "c.avsc")
    assert set(layout.ignored) == {"name", "calls", "address.zip"}
    good, bad = convert_rows(table, layout)
    assert [b.line for b in bad] == [4, 7, 10]  # plan 'trial' is not a symbol
    assert "'trial' is not one of basic, gold" in bad[0].reason
    assert good[0][1] == {"customer_id": "c0", "plan": "basic", "fee": 10.0, "address": {"city": "Leeds"},
                          "signed_up": 1735689600000}
    meta = {"type": "record", "name": "M", "fields": [{"name": "source", "type": ["null", "string"], "default": None}]}
    extra = {**schema, "fields": [*schema["fields"], {"name": "meta", "type": meta}]}
    with_record = layout_from_schema(table, "customers", extra, "c.avsc")
    assert convert_rows(table, with_record)[0][0][1]["meta"] == {}  # no column: there, its field left to the default
    required = {**schema, "fields": [*schema["fields"], {"name": "score", "type": "double"}]}
    with pytest.raises(CsvError, match="field.s. score are neither nullable nor a column"):
        layout_from_schema(table, "customers", required, "c.avsc")
    with pytest.raises(CsvError, match="needs a field"):
        layout_from_schema(table_of(customers_csv(9), time_column=None), "customers", schema, "c.avsc")


def test_view_names_come_from_the_file_stem():
    assert view_name(Path("/x/Customer List (2025).csv")) == "Customer-List-2025"
