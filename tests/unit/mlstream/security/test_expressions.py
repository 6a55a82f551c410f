"""The row-filter and CUSTOM-mask expression subset: what parses, how it evaluates, what is refused.

Row filters are checked against an independent evaluator, SQLite, on the same rows.
"""

from __future__ import annotations

import random
import sqlite3

import pytest

from mlstream.security import expressions
from mlstream.security.expressions import ExpressionError, evaluate, keeps, parse, to_sql

ROW = {"region": "EU", "consent": True, "age": 40, "score": 0.25, "name": "Fay O'Neil", "email": None,
       "address": {"city": "Leeds"}}


@pytest.mark.parametrize("text, expected", [
    ("region = 'EU'", True), ("region <> 'EU'", False), ("region != 'EU'", False), ("age >= 40", True),
    ("age < 18 OR consent", True), ("NOT consent", False), ("age BETWEEN 18 AND 39", False),
    ("age NOT BETWEEN 18 AND 39", True), ("region IN ('US', 'EU')", True), ("region NOT IN ('US')", True),
    ("email IS NULL", True), ("email IS NOT NULL", False), ("name LIKE 'Fay%'", True),
    ("name LIKE '_ay O''Neil'", True),
    ("address.city = 'Leeds'", True), ("`region` = 'EU'", True), ("score > -1.5e-1", True),
    ("lower(region) = 'eu' AND length(name) = 10", True), ("substr(name, 1, 3) = 'Fay'", True),
    ("coalesce(email, 'none') = 'none'", True), ("(age > 30 AND (region = 'EU' OR FALSE))", True),
])
def test_what_a_filter_evaluates_to(text, expected):
    assert keeps(parse(text), ROW, {}) is expected


def test_null_is_unknown_as_in_sql():
    tree = parse("email = 'x' OR email <> 'x'")
    assert evaluate(tree, ROW, {}) is None and keeps(tree, ROW, {}) is False  # a filter keeps only TRUE
    assert evaluate(parse("email = 'x' AND FALSE"), ROW, {}) is False
    assert evaluate(parse("email = 'x' OR TRUE"), ROW, {}) is True
    assert evaluate(parse("NOT (email = 'x')"), ROW, {}) is None
    assert evaluate(parse("email IN ('a', NULL)"), ROW, {}) is None


def test_user_macros_are_values_never_sql():
    tree = parse("region = ${{USER.region}}")
    assert keeps(tree, ROW, {"region": "EU"}) and not keeps(tree, ROW, {"region": "US"})
    sneaky = {"region": "x' OR '1'='1"}
    assert not keeps(tree, ROW, sneaky)
    assert to_sql(tree, sneaky) == "(`region` = 'x\\' OR \\'1\\'=\\'1')"  # one quoted literal
    with pytest.raises(ExpressionError, match=r"the user has no attribute 'region'"):
        keeps(tree, ROW, {})


def test_custom_masks_use_the_column_placeholder():
    assert evaluate(parse("concat(substr({col}, 1, 1), '***')"), ROW, {}, column="Fay") == "F***"
    assert evaluate(parse("mask_show_last_n({col}, 2, 'x', 'x', 'x', -1, '1')"), ROW, {}, column="0142") == "xx42"
    assert evaluate(parse("sha2({col}, 256)"), ROW, {}, column="a") == \
        "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb"


@pytest.mark.parametrize("attack, message", [
    ("region = 'EU'; DROP TABLE customers", "';' is not part of the expressions"),
    ("region = 'EU' -- and the rest", "at character 15: unexpected '-'"),
    ("region = 'EU' /* comment */", "'/' is not part of the expressions"),
    ("__import__('os').system('rm -rf /')", "function '__import__' is not one mlstream evaluates"),
    ("region = (SELECT region FROM users)", "expected ')', found 'region'"),
    ("exec('x')", "function 'exec' is not one mlstream evaluates"),
    ("region = 'EU' UNION SELECT 1", "unexpected 'UNION'"),
    ("region = \"EU\"", "'\"' is not part of the expressions"),
    ("region = 'unterminated", "\"'\" is not part of the expressions"),
    ("${{USER.region}}.__class__", "expected ... nothing after it"),
    ("${USER.region}", "'$' is not part of the expressions"),
    ("a = " + "(" * 100 + "1" + ")" * 100, "nested deeper than 64"),
    ("x" * 5000, "longer than 4000 characters"),
    ("", "the expression is empty"),
    ("region =", "at character 9: expected a value, a column or a function"),
    ("age NOT 3", "expected IN, BETWEEN or LIKE after NOT"),
    ("substr(name)", "substr takes 2 to 3 arguments, not 1"),
])
def test_what_is_not_in_the_subset_is_refused_with_the_position(attack, message):
    with pytest.raises(ExpressionError) as caught:
        parse(attack)
    text = str(caught.value)
    assert all(part in text for part in message.split(" ... ")), text
    assert "at character" in text or "longer than" in text or "empty" in text


def test_a_condition_that_is_not_a_boolean_is_an_error_not_a_row_kept():
    with pytest.raises(ExpressionError, match="is not TRUE, FALSE or NULL"):
        keeps(parse("age"), ROW, {})
    with pytest.raises(ExpressionError, match="a number with a text"):
        keeps(parse("age = 'forty'"), ROW, {})
    with pytest.raises(ExpressionError, match="column 'nope' is not in the record"):
        keeps(parse("nope = 1"), ROW, {})


FILTERS = [
    "region = 'EU' AND consent",
    "age BETWEEN 25 AND 50 OR region IN ('APAC', 'US')",
    "NOT (age < 30) AND email IS NOT NULL",
    "name LIKE 'a%' OR name LIKE '%z_'",
    "(consent OR age > 60) AND NOT region = 'US'",
    "score >= 0.5 AND (email IS NULL OR region <> 'EU')",
]


@pytest.mark.parametrize("text", FILTERS)
def test_row_filters_keep_exactly_the_rows_sqlite_keeps(text):
    rng = random.Random(text)
    rows = [{"id": i, "region": rng.choice(["EU", "US", "APAC", None]), "consent": rng.choice([True, False, None]),
             "age": rng.choice([None, *range(18, 80)]), "score": rng.choice([None, rng.random()]),
             "email": rng.choice([None, "a@b.c"]), "name": "".join(rng.choice("abyz") for _ in range(4))}
            for i in range(400)]
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE t (id, region, consent, age, score, email, name)")
    db.executemany("INSERT INTO t VALUES (:id, :region, :consent, :age, :score, :email, :name)", rows)
    expected = [i for (i,) in db.execute(f"SELECT id FROM t WHERE {text} ORDER BY id")]
    tree = parse(text)
    assert [row["id"] for row in rows if keeps(tree, row, {})] == expected
    assert 0 < len(expected) < len(rows)  # the filter selects something, not everything


def test_columns_and_macros_are_listed_for_checks_against_the_schema_and_the_directory():
    tree = parse("address.city = ${{USER.city}} AND upper(name) LIKE ${{USER.initial}}")
    assert expressions.columns(tree) == {"address.city", "name"} and expressions.macros(tree) == {"city", "initial"}
