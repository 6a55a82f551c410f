"""Field values as the comparisons see them: text folded to plain lower-case ASCII-ish words.

Feeds bring odd unicode (accents, full-width letters, non-breaking spaces, zero-width
characters), stray spaces and empty strings. NFKC folds compatibility forms, combining
accents are dropped, anything that is not a letter, digit or space becomes a space, and
an empty result is a missing value (None), never "".

>>> normalize_text("  Zoë\\u00a0O'NEILL\\u200b ")
'zoe o neill'
>>> normalize_text("ＭＡＲＹ"), normalize_text("   "), normalize_text(None)
('mary', None, None)

A field may first be transformed (the config's ``fields: {name: {column, transform}}``):
``last_first`` turns "Last, First" into "First Last", so "Smith, John" and "John Smith" agree.

>>> last_first("O'Neill, Zoë Ann"), last_first("Zoë O'Neill"), last_first(", Zoë")
("Zoë Ann O'Neill", "Zoë O'Neill", 'Zoë')
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping

from linkage.config import LinkageConfig


def normalize_text(value) -> str | None:
    if value is None:
        return None
    text = unicodedata.normalize("NFKC", str(value))
    text = unicodedata.normalize("NFKD", text)
    kept = []
    for char in text:
        if unicodedata.combining(char):
            continue
        kept.append(char.lower() if char.isalnum() else " ")
    folded = " ".join("".join(kept).split())
    return folded or None


def last_first(value: str) -> str:
    """ "Last, First ..." -> "First ... Last"; a value without a comma is already in order."""
    last, comma, first = value.partition(",")
    return f"{first.strip()} {last.strip()}".strip() if comma else value


FIELD_TRANSFORMS = {"last_first": last_first}


def normalize_record(raw: Mapping, config: LinkageConfig) -> dict[str, str | None]:
    """A record's mapped fields by config name, transformed and normalized."""
    fields = {}
    for name, column in config.fields.items():
        value = raw.get(column)
        transform = config.field_transforms.get(name)
        if transform and isinstance(value, str):
            value = FIELD_TRANSFORMS[transform](value)
        fields[name] = normalize_text(value)
    return fields
