"""Field values as the comparisons see them: text folded to plain lower-case ASCII-ish words.

Feeds bring odd unicode (accents, full-width letters, non-breaking spaces, zero-width
characters), stray spaces and empty strings. NFKC folds compatibility forms, combining
accents are dropped, anything that is not a letter, digit or space becomes a space, and
an empty result is a missing value (None), never "".

>>> normalize_text("  Zoë\\u00a0O'NEILL\\u200b ")
'zoe o neill'
>>> normalize_text("ＭＡＲＹ"), normalize_text("   "), normalize_text(None)
('mary', None, None)
"""

from __future__ import annotations

import unicodedata


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
