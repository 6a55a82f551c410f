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
from collections import Counter, defaultdict
from collections.abc import Iterable

from linkage.keys import record_key, split_key


def quality(events: Iterable[dict], true_pairs: set[frozenset[str]], *, mode: str, possible_pairs: int) -> dict:
    events = list(events)
    candidates: set[frozenset[str]] = set()
    for event in events:
        key = record_key(event["source"], event["record_id"])
        for c in event["candidates"]:
            candidates.add(frozenset((key, record_key(c["source"], c["record_id"]))))
    linked = _cluster_pairs(events, mode)
    return pair_figures(records=len(events), true_pairs=len(true_pairs), possible_pairs=possible_pairs,
                        candidate_pairs=len(candidates), true_candidates=len(candidates & true_pairs),
                        linked_pairs=len(linked), true_positives=len(linked & true_pairs))


def pair_figures(*, records: int, true_pairs: int, possible_pairs: int, candidate_pairs: int, true_candidates: int,
                 linked_pairs: int, true_positives: int) -> dict:
    """The standard figures from pair counts: blocking's (pairs completeness, reduction ratio)
    and the links' (precision, recall, F1)."""
    precision = true_positives / linked_pairs if linked_pairs else 0.0
    recall = true_positives / true_pairs if true_pairs else 0.0
    return {
        "records": records,
        "true_pairs": true_pairs,
        "possible_pairs": possible_pairs,
        "candidate_pairs": candidate_pairs,
        "pairs_completeness": true_candidates / true_pairs if true_pairs else 0.0,
        "reduction_ratio": 1 - candidate_pairs / possible_pairs if possible_pairs else 0.0,
        "linked_pairs": linked_pairs,
        "true_positives": true_positives,
        "precision": precision,
        "recall": recall,
        "f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
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


class LiveQuality:
    """The figures of :func:`quality`, kept up to date one link event at a time.

    For feeds whose records say which entity they truly are (a config's ``truth``):
    true pairs, possible pairs and linked pairs are those among the records seen so
    far, so at the end of a feed the figures equal :func:`quality` over it. Candidates
    it has not seen (records linked before it started) are left out. Linked
    pairs are pairs in one cluster, as there: each cluster counts its records per
    (true entity, source), and a link adds the pairs across the two clusters it joins.

    >>> live = LiveQuality("link")
    >>> live.add({"source": "a", "record_id": "1", "candidates": []}, truth="p1")
    >>> live.add({"source": "b", "record_id": "1",
    ...           "candidates": [{"source": "a", "record_id": "1", "linked": True}]}, truth="p1")
    >>> figures = live.figures()
    >>> figures["f1"], figures["pairs_completeness"], figures["possible_pairs"]
    (1.0, 1.0, 1)
    """

    def __init__(self, mode: str):
        self.mode = mode
        self.truth_of: dict[str, str] = {}
        self.parent: dict[str, str] = {}
        self.clusters: dict[str, Counter] = {}  # root record -> Counter[(true entity, source)]
        self.per_entity: defaultdict[str, Counter] = defaultdict(Counter)  # true entity -> source -> records
        self.per_source: Counter = Counter()
        self.counts = dict.fromkeys(("records", "true_pairs", "possible_pairs", "candidate_pairs", "true_candidates",
                                     "linked_pairs", "true_positives"), 0)

    def add(self, event: dict, truth: str | None) -> None:
        key = record_key(event["source"], event["record_id"])
        source = event["source"]
        truth = key if truth is None else truth  # unknown: an entity of its own
        seen_here = self.per_entity[truth]
        counts = self.counts
        counts["records"] += 1
        if self.mode == "link":
            counts["true_pairs"] += sum(seen_here.values()) - seen_here[source]
            counts["possible_pairs"] += sum(self.per_source.values()) - self.per_source[source]
        else:
            counts["true_pairs"] += sum(seen_here.values())
            counts["possible_pairs"] += sum(self.per_source.values())
        seen_here[source] += 1
        self.per_source[source] += 1
        self.truth_of[key] = truth
        self.parent[key] = key
        self.clusters[key] = Counter({(truth, source): 1})
        for c in event["candidates"]:
            other = record_key(c["source"], c["record_id"])
            if other not in self.truth_of:
                continue  # linked before these figures started (a worker's restart): out of their scope
            counts["candidate_pairs"] += 1
            counts["true_candidates"] += self.truth_of.get(other) == truth
            if c["linked"]:
                self._join(self._root(other), self._root(key))

    def _root(self, key: str) -> str:
        while self.parent[key] != key:
            self.parent[key] = self.parent[self.parent[key]]
            key = self.parent[key]
        return key

    def _join(self, a: str, b: str) -> None:
        if a == b:
            return
        if sum(self.clusters[a].values()) < sum(self.clusters[b].values()):
            a, b = b, a
        big, small = self.clusters[a], self.clusters.pop(b)
        for (truth_a, source_a), n_a in big.items():
            for (truth_b, source_b), n_b in small.items():
                if self.mode == "link" and source_a == source_b:
                    continue
                self.counts["linked_pairs"] += n_a * n_b
                self.counts["true_positives"] += n_a * n_b if truth_a == truth_b else 0
        big.update(small)
        self.parent[b] = a

    def figures(self) -> dict:
        return pair_figures(**self.counts)
