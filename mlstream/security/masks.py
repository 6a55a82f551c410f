"""Ranger's data-mask types, as Hive's masking functions compute them, on decoded Avro values.

Ranger's hive service-def gives each mask type a Hive transformer; this module is those
functions, with Hive's semantics (``GenericUDFMask`` and friends):

===================== ============================================================ ==================
mask type             Ranger's transformer                                          e.g.
===================== ============================================================ ==================
MASK                  ``mask({col})``                                               Ab-12 -> Xx-nn
MASK_SHOW_LAST_4      ``mask_show_last_n({col}, 4, 'x', 'x', 'x', -1, '1')``        xxxx-xxxx-4321
MASK_SHOW_FIRST_4     ``mask_show_first_n({col}, 4, 'x', 'x', 'x', -1, '1')``       1234-xxxx-xxxx
MASK_HASH             ``mask_hash({col})``: SHA-256, hex                            a string
MASK_NULL             ``NULL``                                                      None
MASK_NONE             ``{col}``                                                     unchanged
MASK_DATE_SHOW_YEAR   ``mask({col}, 'x', 'x', 'x', -1, '1', 1, 0, -1)``             1990-07-15 -> 1990-01-01
CUSTOM                ``valueExpr``, a safe expression (:mod:`mlstream.security.expressions`)
===================== ============================================================ ==================

By type, as in Hive: a string has its letters and digits replaced (other characters kept); an
integer has each digit replaced by the number mask (``1``); a date has its day, month and year
replaced where the arguments say (-1 keeps it); any other type (float, boolean, bytes) becomes
NULL under a masking function, as Hive's mask returns NULL for types it does not mask.
MASK_HASH hashes the value's text (strings as they are, numbers as SQL ``CAST(x AS STRING)``
writes them), so a hashed number is a string, as Spark's ``sha2(CAST(x AS STRING), 256)``.

>>> mask("abcd-EFGH-8765-4321")            # Hive's documented example
'xxxx-XXXX-nnnn-nnnn'
>>> apply_mask("MASK_SHOW_LAST_4", "1234-5678-8765-4321")
'xxxx-xxxx-xxxx-4321'
>>> import datetime; apply_mask("MASK_DATE_SHOW_YEAR", datetime.date(1990, 7, 15))
datetime.date(1990, 1, 1)
"""

from __future__ import annotations

import datetime
import hashlib
from typing import Any

#: A mask character argument of -1 keeps that class of character unchanged (Hive's convention).
KEEP = -1


def _mask_char(c: str, upper, lower, digit, other) -> str:
    if "A" <= c <= "Z":
        replacement = upper
    elif "a" <= c <= "z":
        replacement = lower
    elif "0" <= c <= "9":
        replacement = digit
    else:
        replacement = other
    return c if replacement == KEEP else replacement


def _mask_string(value: str, start: int, end: int, upper, lower, digit, other) -> str:
    return value[:start] + "".join(_mask_char(c, upper, lower, digit, other) for c in value[start:end]) + value[end:]


def _mask_int(value: int, start: int, end: int, number: int) -> int:
    """The digits of ``value`` (sign kept) from ``start`` to ``end`` replaced by ``number``."""
    digits = str(abs(value))
    masked = digits[:start] + str(number) * len(digits[start:end]) + digits[end:]
    return -int(masked) if value < 0 else int(masked)


def _mask_date(value: datetime.date, day: int, month: int, year: int) -> datetime.date:
    # Hive's month argument is 0-based (0 = January), as java.util.Calendar's
    return datetime.date(value.year if year == KEEP else max(year, 1), value.month if month == KEEP else month + 1,
                         value.day if day == KEEP else day)


def _span(length: int, first: int | None, last: int | None) -> tuple[int, int]:
    if first is not None:
        return 0, min(max(first, 0), length)
    if last is not None:
        return max(length - max(last, 0), 0), length
    return 0, length


def _masked(value: Any, start_end, upper="X", lower="x", digit="n", other=KEEP, number=1, day=1, month=0,
            year=1) -> Any:
    if value is None:
        return None
    if isinstance(value, (bool, float, bytes)):
        return None
    if isinstance(value, str):
        return _mask_string(value, *start_end(len(value)), upper, lower, digit, other)
    if isinstance(value, int):
        return _mask_int(value, *start_end(len(str(abs(value)))), number)
    if isinstance(value, datetime.datetime):
        return None
    if isinstance(value, datetime.date):
        return _mask_date(value, day, month, year)
    return None


def mask(value: Any, upper="X", lower="x", digit="n", other=KEEP, number=1, day=1, month=0, year=1) -> Any:
    """Hive's ``mask(value, upper, lower, digit, other, number, day, month, year)``."""
    return _masked(value, lambda n: (0, n), upper, lower, digit, other, number, day, month, year)


def mask_first_n(value: Any, n: int = 4, upper="X", lower="x", digit="n", other=KEEP, number=1) -> Any:
    return _masked(value, lambda length: _span(length, n, None), upper, lower, digit, other, number)


def mask_last_n(value: Any, n: int = 4, upper="X", lower="x", digit="n", other=KEEP, number=1) -> Any:
    return _masked(value, lambda length: _span(length, None, n), upper, lower, digit, other, number)


def mask_show_first_n(value: Any, n: int = 4, upper="X", lower="x", digit="n", other=KEEP, number=1) -> Any:
    return _masked(value, lambda length: (min(max(n, 0), length), length), upper, lower, digit, other, number)


def mask_show_last_n(value: Any, n: int = 4, upper="X", lower="x", digit="n", other=KEEP, number=1) -> Any:
    return _masked(value, lambda length: (0, max(length - max(n, 0), 0)), upper, lower, digit, other, number)


def sql_string(value: Any) -> str:
    """``CAST(value AS STRING)`` as Spark SQL writes it: what MASK_HASH hashes."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return f"{value:.1f}"
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def mask_hash(value: Any) -> str | None:
    """SHA-256 of the value's text, hex: Spark's ``sha2(CAST(value AS STRING), 256)``."""
    return None if value is None else hashlib.sha256(sql_string(value).encode("utf-8")).hexdigest()


#: Ranger's mask types with their hive transformers' arguments (MASK_NONE keeps, MASK_NULL drops, CUSTOM elsewhere).
RANGER_MASKS = {
    "MASK": lambda v: mask(v),
    "MASK_SHOW_LAST_4": lambda v: mask_show_last_n(v, 4, "x", "x", "x", KEEP, 1),
    "MASK_SHOW_FIRST_4": lambda v: mask_show_first_n(v, 4, "x", "x", "x", KEEP, 1),
    "MASK_HASH": mask_hash,
    "MASK_NULL": lambda v: None,
    "MASK_NONE": lambda v: v,
    "MASK_DATE_SHOW_YEAR": lambda v: mask(v, "x", "x", "x", KEEP, 1, 1, 0, KEEP),
}


def apply_mask(mask_type: str, value: Any) -> Any:
    """The value masked by one of Ranger's mask types (CUSTOM: see :mod:`mlstream.security.expressions`)."""
    return RANGER_MASKS[mask_type](value)


def masked_type(mask_type: str, avro_type: Any) -> Any:
    """The Avro type of a field after its mask: a hash is a string; a masked value may be NULL, so it is nullable."""
    if mask_type == "MASK_NONE":
        return avro_type
    if mask_type == "MASK_HASH":
        return ["null", "string"]
    return ["null", *[t for t in (avro_type if isinstance(avro_type, list) else [avro_type]) if t != "null"]]
