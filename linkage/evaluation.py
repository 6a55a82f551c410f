"""Linkage quality against known true pairs, from the link events a linker emitted.

Candidate pairs are every pair a record was compared with (blocking's output); linked
pairs are every pair that ends in the same entity (so a duplicate found through a
third record counts), limited to pairs across sources when linking. The figures are
the standard ones (Christen, *Data Matching*, 2012): pairs completeness and reduction
ratio judge blocking, precision, recall and F1 judge the links.

>>> events = [{"source": "a", "record_id": "1", "entity_id": "e1", "candidates": []},
...           {"source": "b", "record_id": "1", "entity_id": "e1",
...            "candidates": [{"source": "a", "record_id": "1", "linked": True}]}]
>>> truth = {frozenset(("a|1", "b|1"))}
>>> quality(events, truth, mode="link", possible_pairs=4)["f1"]
1.0
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterable

from linkage.linker import record_key, split_key


def quality(events: Iterable[dict], true_pairs: set[frozenset[str]], *, mode: str, possible_pairs: int) -> dict:
    events = list(events)
    candidates: set[frozenset[str]] = set()
    for event in events:
        key = record_key(event["source"], event["record_id"])
        for c in event["candidates"]:
            candidates.add(frozenset((key, record_key(c["source"], c["record_id"]))))
    linked = _cluster_pairs(events, mode)
    true_positives = len(linked & true_pairs)
    precision = true_positives / len(linked) if linked else 0.0
    recall = true_positives / len(true_pairs) if true_pairs else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "records": len(events),
        "true_pairs": len(true_pairs),
        "candidate_pairs": len(candidates),
        "pairs_completeness": len(candidates & true_pairs) / len(true_pairs) if true_pairs else 0.0,
        "reduction_ratio": 1 - len(candidates) / possible_pairs if possible_pairs else 0.0,
        "linked_pairs": len(linked),
        "true_positives": true_positives,
        "precision": precision,
        "recall": recall,
        "f1": f1,
    }


def _cluster_pairs(events: Iterable[dict], mode: str) -> set[frozenset[str]]:
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for event in events:
        key = record_key(event["source"], event["record_id"])
        find(key)
        for c in event["candidates"]:
            if c["linked"]:
                parent[find(record_key(c["source"], c["record_id"]))] = find(key)
    groups: dict[str, list[str]] = defaultdict(list)
    for key in parent:
        groups[find(key)].append(key)
    pairs = set()
    for group in groups.values():
        for a, b in itertools.combinations(group, 2):
            if mode == "dedupe" or split_key(a)[0] != split_key(b)[0]:
                pairs.add(frozenset((a, b)))
    return pairs
