"""The Spark SQL of a team's secure view: each mask as Spark's built-ins compute it, the filter quoted by us."""

from __future__ import annotations

import pytest

from mlstream.errors import UserError
from mlstream.security.expressions import parse
from mlstream.security.secure_datasets import ColumnMask, TeamView
from spark_jobs.secure_view import mask_sql, view_sql

DATE = {"type": "int", "logicalType": "date"}


def column(mask_type: str, value_expr: str | None = None, name: str = "c") -> ColumnMask:
    return ColumnMask(name, mask_type, parse(value_expr) if value_expr else None, "p")


@pytest.mark.parametrize("mask_type, avro_type, expected", [
    ("MASK", "string", "mask(`c`)"),
    ("MASK", "long", "CAST(regexp_replace(CAST(`c` AS STRING), '[0-9]', '1') AS BIGINT)"),
    ("MASK", DATE, "DATE'0001-01-01'"),
    ("MASK", "double", "NULL"),
    ("MASK_HASH", "long", "sha2(CAST(`c` AS STRING), 256)"),
    ("MASK_NULL", "string", "NULL"),
    ("MASK_NONE", "string", "`c`"),
    ("MASK_DATE_SHOW_YEAR", DATE, "make_date(year(`c`), 1, 1)"),
    ("MASK_DATE_SHOW_YEAR", ["null", "string"], "mask(`c`, 'x', 'x', 'x')"),
    ("MASK_SHOW_LAST_4", "string", "CASE WHEN length(`c`) <= 4 THEN `c` ELSE concat(mask(substring(`c`, 1, "
                                   "length(`c`) - 4), 'x', 'x', 'x'), substring(`c`, -4)) END"),
    ("MASK_SHOW_FIRST_4", DATE, "DATE'0001-01-01'"),
])
def test_each_mask_in_spark_sql(mask_type, avro_type, expected):
    assert mask_sql(column(mask_type), avro_type, {}) == expected


def test_custom_masks_and_filters_are_printed_from_the_tree():
    assert mask_sql(column("CUSTOM", "concat(substr({col}, 1, 1), '***')"), "string", {}) == \
        "concat(substr(`c`, 1, 1), '***')"
    view = TeamView("t", "raw", ("id", "c"), {"c": column("MASK")}, parse("region = ${{USER.region}}"),
                    "region = ${{USER.region}}", {"region": "E'U"}, "v1", schema={})
    assert view_sql(view, {"fields": [{"name": "id", "type": "string"}, {"name": "c", "type": "string"}]}, "src") == \
        "SELECT `id`, mask(`c`) AS `c` FROM src WHERE (`region` = 'E\\'U')"


@pytest.mark.parametrize("mask, avro_type, message", [
    (column("MASK_SHOW_LAST_4"), "long", "MASK_SHOW_LAST_4 of the integer column c has no Spark form here"),
    (column("CUSTOM", "mask_show_last_n({col}, 2)"), "string", "uses Hive's mask functions"),
])
def test_what_has_no_spark_form_is_an_error_not_another_result(mask, avro_type, message):
    with pytest.raises(UserError, match=message):
        mask_sql(mask, avro_type, {})
