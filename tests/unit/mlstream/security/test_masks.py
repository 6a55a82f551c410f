"""Every Ranger mask type, against the outputs Hive documents for its masking functions."""

from __future__ import annotations

import datetime
import hashlib

import pytest

from mlstream.security import masks
from mlstream.security.policies import MASK_TYPES

CARD = "1234-5678-8765-4321"


@pytest.mark.parametrize("call, expected", [
    # Hive's LanguageManual UDF, "Data Masking Functions": its own examples
    (lambda: masks.mask("abcd-EFGH-8765-4321"), "xxxx-XXXX-nnnn-nnnn"),
    (lambda: masks.mask("abcd-EFGH-8765-4321", "U", "l", "#"), "llll-UUUU-####-####"),
    (lambda: masks.mask_first_n(CARD, 4), "nnnn-5678-8765-4321"),
    (lambda: masks.mask_last_n(CARD, 4), "1234-5678-8765-nnnn"),
    (lambda: masks.mask_show_first_n(CARD, 4), "1234-nnnn-nnnn-nnnn"),
    (lambda: masks.mask_show_last_n(CARD, 4), "nnnn-nnnn-nnnn-4321"),
    # numbers: each digit becomes the number mask (1), the sign stays; dates: day 1, January, year 0001
    (lambda: masks.mask(12345), 11111),
    (lambda: masks.mask(-907), -111),
    (lambda: masks.mask_show_last_n(123456789, 4), 111116789),
    (lambda: masks.mask(datetime.date(1990, 7, 15)), datetime.date(1, 1, 1)),
    # shorter than n: all shown / all masked
    (lambda: masks.mask_show_last_n("abc", 4), "abc"),
    (lambda: masks.mask_first_n("ab", 4), "xx"),
    # NULL in, NULL out; types Hive does not mask become NULL
    (lambda: masks.mask(None), None),
    (lambda: masks.mask(3.5), None),
    (lambda: masks.mask(True), None),
])
def test_hive_masking_functions(call, expected):
    assert call() == expected


@pytest.mark.parametrize("mask_type, value, expected", [
    ("MASK", "Fay Fraser", "Xxx Xxxxxx"),
    ("MASK", "fay@example.com", "xxx@xxxxxxx.xxx"),
    ("MASK_SHOW_LAST_4", "+44 20 7946 0142", "+xx xx xxxx 0142"),  # Ranger's transformer: 'x' for every class
    ("MASK_SHOW_LAST_4", 123456789, 111116789),
    ("MASK_SHOW_FIRST_4", CARD, "1234-xxxx-xxxx-xxxx"),
    ("MASK_HASH", "fay@example.com", hashlib.sha256(b"fay@example.com").hexdigest()),
    ("MASK_HASH", 42, hashlib.sha256(b"42").hexdigest()),  # a hashed number is a string, as sha2(CAST(x AS STRING))
    ("MASK_HASH", None, None),
    ("MASK_NULL", "anything", None),
    ("MASK_NONE", "kept", "kept"),
    ("MASK_DATE_SHOW_YEAR", datetime.date(1990, 7, 15), datetime.date(1990, 1, 1)),
    ("MASK_DATE_SHOW_YEAR", "1990-07-15", "xxxx-xx-xx"),  # a string is masked as a string, as Hive does
])
def test_each_ranger_mask_type_is_its_hive_transformer(mask_type, value, expected):
    assert masks.apply_mask(mask_type, value) == expected


def test_every_mask_type_but_custom_has_its_function():
    assert set(masks.RANGER_MASKS) == set(MASK_TYPES) - {"CUSTOM"}


@pytest.mark.parametrize("mask_type, avro_type, expected", [
    ("MASK_HASH", "long", ["null", "string"]),
    ("MASK_NULL", "string", ["null", "string"]),
    ("MASK", ["null", "string"], ["null", "string"]),
    ("MASK_DATE_SHOW_YEAR", {"type": "int", "logicalType": "date"}, ["null", {"type": "int", "logicalType": "date"}]),
    ("MASK_NONE", "double", "double"),
])
def test_the_masked_field_s_avro_type(mask_type, avro_type, expected):
    assert masks.masked_type(mask_type, avro_type) == expected
