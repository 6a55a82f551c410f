"""Comparing two records field by field into a comparison vector of agreement levels.

Each comparison gives a level: 0 is disagreement, the highest level full agreement, and
None a missing value on either side (the model then ignores that field for the pair).
Strings use rapidfuzz similarities, dates are parsed and compared as dates (a swapped
day and month, or one differing part, is a partial agreement), numbers as numbers.

>>> from linkage.config import Comparison
>>> jw = Comparison("surname", "jaro_winkler", (0.95, 0.85))
>>> compare_field("smith", "smith", jw), compare_field("smith", "smyth", jw), compare_field("smith", "jones", jw)
(2, 1, 0)
>>> dob = Comparison("dob", "date")
>>> compare_field("19800201", "1980-02-01", dob), compare_field("19800102", "19800201", dob)
(2, 1)
>>> compare_field(None, "19800201", dob) is None
True
"""

from __future__ import annotations

from collections.abc import Sequence
import re
from datetime import date, datetime
from functools import lru_cache

from rapidfuzz import fuzz
from rapidfuzz.distance import DamerauLevenshtein, JaroWinkler, Levenshtein

from linkage.config import Comparison

SIMILARITY = {
    "jaro_winkler": JaroWinkler.normalized_similarity,
    "levenshtein": Levenshtein.normalized_similarity,
    "damerau_levenshtein": DamerauLevenshtein.normalized_similarity,
    "token_set": lambda a, b: fuzz.token_set_ratio(a, b) / 100.0,
    "exact": lambda a, b: 1.0 if a == b else 0.0,
}

Vector = tuple[int | None, ...]


def similarity_level(similarity: float, levels: Sequence[float]) -> int:
    for i, threshold in enumerate(levels):
        if similarity >= threshold:
            return len(levels) - i
    return 0


def _as_normalized(fmt: str) -> str:
    """A date format as normalized values spell it: "%d.%m.%Y" -> "%d %m %Y" (punctuation became spaces)."""
    return " ".join(re.sub(r"[^%A-Za-z0-9]+", " ", fmt).split())


@lru_cache(maxsize=65536)
def parse_date(value: str, formats: tuple[str, ...]) -> date | None:
    value = _as_normalized(value.replace("%", ""))
    for fmt in formats:
        try:
            return datetime.strptime(value, _as_normalized(fmt)).date()
        except ValueError:
            continue
    return None


def compare_dates(a: str, b: str, comparison: Comparison) -> int:
    da, db = parse_date(a, comparison.formats), parse_date(b, comparison.formats)
    if da is None or db is None:  # unparsable: fall back to the digits as text
        return 2 if a == b else (1 if Levenshtein.distance(a, b) <= 1 else 0)
    if da == db:
        return 2
    same_parts = (da.year == db.year) + (da.month == db.month) + (da.day == db.day)
    swapped = da.year == db.year and da.month == db.day and da.day == db.month
    return 1 if same_parts == 2 or swapped else 0


def _number(value: str) -> float | None:
    try:
        return float(value.replace(" ", ""))
    except ValueError:
        return None


def compare_numbers(a: str, b: str, comparison: Comparison) -> int:
    na, nb = _number(a), _number(b)
    if na is None or nb is None:
        return 2 if a == b else 0
    if na == nb:
        return 2
    return 1 if abs(na - nb) <= comparison.tolerance else 0


def compare_field(a: str | None, b: str | None, comparison: Comparison) -> int | None:
    if a is None or b is None:
        return None
    if comparison.method == "date":
        return compare_dates(a, b, comparison)
    if comparison.method == "number":
        return compare_numbers(a, b, comparison)
    if a == b:
        return len(comparison.levels)
    return similarity_level(SIMILARITY[comparison.method](a, b), comparison.levels)


def compare(a: dict[str, str | None], b: dict[str, str | None], comparisons: Sequence[Comparison]) -> Vector:
    """The comparison vector of two records (normalized fields by config name)."""
    return tuple(compare_field(a.get(c.field), b.get(c.field), c) for c in comparisons)
