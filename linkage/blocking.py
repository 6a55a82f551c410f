"""Blocking: the keys a record is filed under, and the index that finds its candidates.

A record gets one key per configured blocking key whose fields it has; two records are
candidates when they share any key. Several keys (a phonetic surname code, a postcode,
a date of birth, an id number) keep a typo in one field from hiding a true match.

>>> from linkage.config import BlockingKey, KeyPart
>>> keys = [BlockingKey("sdx", (KeyPart("surname", "soundex"),)),
...         BlockingKey("dob_pc", (KeyPart("dob", "digits"), KeyPart("postcode")))]
>>> blocking_keys({"surname": "smith", "dob": "1980-02-01", "postcode": None}, keys)
['sdx:S530']
>>> born = [BlockingKey("born", (KeyPart("dob", "year", format="%d/%m/%Y"),))]
>>> blocking_keys({"dob": "03 04 1980"}, born), blocking_keys({"dob": "1980 04 03"}, born)
(['born:1980'], [])
>>> index = BlockingIndex({}, max_block_size=2)
>>> for rid in ("a", "b", "c"):
...     index.add(rid, ["sdx:S530"])
>>> index.candidates(["sdx:S530", "sdx:X000"])   # only the 2 most recent are kept
['b', 'c']
"""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping, Sequence

import jellyfish

from linkage.comparisons import parse_date
from linkage.config import BlockingKey, KeyPart


def _transform(value: str, part: KeyPart) -> str | None:
    compact = value.replace(" ", "")
    match part.transform:
        case "exact":
            return value
        case "soundex":
            return jellyfish.soundex(compact)
        case "metaphone":
            return jellyfish.metaphone(compact).upper()
        case "nysiis":
            return jellyfish.nysiis(compact)
        case "match_rating":
            return jellyfish.match_rating_codex(compact)
        case "digits":
            return "".join(c for c in value if c.isdigit()) or None
        case "prefix":
            return compact[: part.length]
        case "year":  # by the part's date format: "03/04/1980" has no year in its first four digits
            parsed = parse_date(value, (part.format,))
            return str(parsed.year) if parsed else None
    raise ValueError(f"unknown transform {part.transform!r}")


def blocking_keys(fields: dict[str, str | None], keys: Sequence[BlockingKey]) -> list[str]:
    """``<key name>:<value>`` for each blocking key whose every part is present."""
    out = []
    for key in keys:
        values = []
        for part in key.parts:
            value = fields.get(part.field)
            coded = _transform(value, part) if value else None
            if not coded:
                break
            values.append(coded)
        else:
            out.append(f"{key.name}:{'|'.join(values)}")
    return out


class BlockingIndex:
    """Blocking key -> record keys, over any mutable mapping (a dict, a Faust table).

    Each block keeps its ``max_block_size`` most recent records: a key shared by very many
    records (a common surname) says little, and an unbounded block would make every new
    record compare against all of them.
    """

    def __init__(self, blocks: MutableMapping[str, list[str]], max_block_size: int):
        self.blocks = blocks
        self.max_block_size = max_block_size

    def candidates(self, keys: Iterable[str]) -> list[str]:
        seen: dict[str, None] = {}
        for key in keys:
            for record_key in self.blocks.get(key) or ():
                seen[record_key] = None
        return list(seen)

    def add(self, record_key: str, keys: Iterable[str]) -> None:
        for key in keys:
            block = list(self.blocks.get(key) or ())
            block.append(record_key)
            self.blocks[key] = block[-self.max_block_size:]
