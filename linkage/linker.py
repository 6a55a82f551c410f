"""The linker: one arriving record in, its link decision and entity updates out.

Per record: check the source, drop exact repeats, normalize the mapped fields, find
candidates through the blocking index, compare, score with the Fellegi-Sunter model,
decide, cluster, then file the record in the index so later records can find it. The
model keeps learning from every candidate pair and refits by EM on a schedule. With a
``classifier`` in the config, :meth:`Linker.confirm` teaches it reviewers' verdicts, and
once ready it shares each pair's match log-odds.

State sits in mutable mappings handed in (plain dicts, in unit tests and in the app, which
writes every change to its state changelog), so the same code runs in both. Each record is
stored once, with its blocking keys and the records it linked to; the blocking index (key ->
records) and the entity clusters are views the linker rebuilds from them, in arrival order,
when it starts, and keeps up to date. So a restart finds exactly the same index and entities,
and a record costs one state write, not one per blocking key and entity. The model and the
classifier go into the state when the caller says (:meth:`Linker.save_models`, at its commit
points), so a restart resumes them where the committed records left them.

>>> from linkage.config import LinkageConfig
>>> config = LinkageConfig.from_file("febrl")
>>> linker = Linker(config, "v1", LinkerState.in_memory())
>>> a = {"given_name": "michaela", "surname": "neumann", "date_of_birth": "19151111", "postcode": "4223",
...      "soc_sec_id": "5304218", "suburb": "winston hills", "state": "nsw"}
>>> first = linker.process("febrl-a", "1", a)
>>> second = linker.process("febrl-b", "1", dict(a, given_name="micheala"))
>>> second.event["candidates"][0]["linked"], second.event["entity_id"] == first.event["entity_id"]
(True, True)
>>> linker.process("febrl-b", "1", a).rejected
'DUPLICATE_RECORD'
>>> linker.process("febrl-b", "  ", a).rejected
'BLANK_RECORD_ID'
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field

from linkage.blocking import BlockingIndex, blocking_keys
from linkage.clustering import EntityClusters
from linkage.comparisons import compare
from linkage.config import LinkageConfig
from linkage.fellegi_sunter import FellegiSunter
from linkage.keys import record_key, split_key
from linkage.pair_classifier import PairClassifier
from linkage.normalize import normalize_record

UNKNOWN_SOURCE = "UNKNOWN_SOURCE"
UNKNOWN_RECORD = "UNKNOWN_RECORD"
NO_CLASSIFIER = "NO_CLASSIFIER"
DUPLICATE_RECORD = "DUPLICATE_RECORD"
EMPTY_RECORD = "EMPTY_RECORD"
#: An empty or blank record id: never an id (it would make every later blank id a "duplicate").
BLANK_RECORD_ID = "BLANK_RECORD_ID"


def _logit(p: float) -> float:
    p = min(max(p, 1e-12), 1 - 1e-12)
    return math.log(p / (1 - p))


@dataclass
class LinkerState:
    """Where the linker keeps what must survive a restart."""

    records: MutableMapping[str, dict]  # record key -> {"fields", "keys" (blocking), "linked"}
    model: MutableMapping[str, dict]  # config name -> Fellegi-Sunter state; <config name>/classifier -> classifier

    @classmethod
    def in_memory(cls) -> "LinkerState":
        return cls({}, {})


@dataclass
class Outcome:
    """What became of one record: rejected (with the reason) or an event plus entity updates."""

    rejected: str | None = None
    event: dict | None = None
    entity_updates: list[dict] = field(default_factory=list)
    missing_fields: int = 0


class Linker:
    def __init__(self, config: LinkageConfig, config_version: str, state: LinkerState,
                 clock_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000):
        self.config = config
        self.config_version = config_version
        self.state = state
        self.index = BlockingIndex({}, config.max_block_size)
        self.clusters = EntityClusters()
        for key, stored in state.records.items():  # in arrival order: the same blocks, the same entity ids
            self.index.add(key, stored["keys"])
            self.clusters.add(key, stored["linked"])
        saved = state.model.get(config.name)
        n_levels = [c.n_levels for c in config.comparisons]
        if saved is not None and saved["n_levels"] == n_levels:
            self.model = FellegiSunter.from_state(saved)
        else:
            self.model = FellegiSunter(n_levels, config.model.prior_match)
        # Pairs observed at the last fit: the next refit comes when it would have without the restart.
        self._fitted_at = saved.get("fitted_at", 0) if saved is not None and saved["n_levels"] == n_levels else 0
        self.classifier = None
        if config.classifier is not None:
            saved = state.model.get(self._classifier_key)
            self.classifier = PairClassifier.from_state(saved) if saved is not None else PairClassifier()
            self.classifier.min_confirmed = config.classifier.min_confirmed
        self.clock_ms = clock_ms
        self.counters: Counter[str] = Counter()

    def normalized(self, raw: dict) -> tuple[dict[str, str | None], int]:
        fields = normalize_record(raw, self.config)
        return fields, sum(v is None for v in fields.values())

    def process(self, source: str, record_id: str, raw: dict) -> Outcome:
        """Link one record."""
        config = self.config
        if config.sources and source not in config.sources:
            self.counters["unknown_source"] += 1
            return Outcome(rejected=UNKNOWN_SOURCE)
        if not record_id.strip():
            self.counters["blank_record_ids"] += 1
            return Outcome(rejected=BLANK_RECORD_ID)
        key = record_key(source, record_id)
        if key in self.state.records:
            self.counters["duplicate_records"] += 1
            return Outcome(rejected=DUPLICATE_RECORD)
        fields, missing = self.normalized(raw)
        self.counters["missing_fields"] += missing
        if missing == len(fields):
            self.counters["empty_records"] += 1
            return Outcome(rejected=EMPTY_RECORD, missing_fields=missing)

        keys = blocking_keys(fields, config.blocking)
        if not keys:
            self.counters["records_without_blocking_keys"] += 1
        scored = []
        for other in self.index.candidates(keys):
            other_source, other_id = split_key(other)
            if config.mode == "link" and other_source == source:
                continue
            vector = compare(fields, self.state.records[other]["fields"], config.comparisons)
            self.model.observe(vector)
            scored.append((other, other_source, other_id, self.model.weight(vector), self._probability(vector)))
        linked = self._decide(source, scored)
        updates = self.clusters.add(key, linked)
        self.index.add(key, keys)
        self.state.records[key] = {"fields": fields, "keys": keys, "linked": linked}
        self._maybe_refit()

        self.counters["records_linked"] += 1
        self.counters["candidate_pairs"] += len(scored)
        self.counters["links"] += len(linked)
        entity_id = self.clusters.entity_of(key)
        event = {
            "source": source,
            "record_id": record_id,
            "entity_id": entity_id,
            "candidates": [{"source": s, "record_id": r, "match_weight": round(w, 4),
                            "match_probability": p, "linked": k in linked}
                           for k, s, r, w, p in scored],
            "blocking_keys": keys,
            "config_name": config.name,
            "config_version": self.config_version,
            "model_fits": self.model.n_fits,
            "linked_at": self.clock_ms(),
        }
        return Outcome(event=event, entity_updates=updates, missing_fields=missing)

    @property
    def _classifier_key(self) -> str:
        return f"{self.config.name}/classifier"

    def _probability(self, vector) -> float:
        probability = self.model.probability(vector)
        if self.classifier is not None and self.classifier.ready:
            # Blended as log-odds, not probabilities: Fellegi-Sunter's are far more extreme than a
            # logistic regression's, and averaging them lost true links (FEBRL 4 recall 0.9986 -> 0.9952).
            weight = self.config.classifier.weight
            log_odds = (1 - weight) * _logit(probability) + weight * _logit(self.classifier.probability(vector))
            probability = 1.0 / (1.0 + math.exp(-log_odds))
        return probability

    def confirm(self, key: str, other_key: str, match: bool) -> str | None:
        """Learn from a reviewer's verdict on a pair; the reason if it cannot be learned from."""
        if self.classifier is None:
            self.counters["confirmations_without_classifier"] += 1
            return NO_CLASSIFIER
        records = self.state.records
        if key not in records or other_key not in records:
            self.counters["confirmations_of_unknown_records"] += 1
            return UNKNOWN_RECORD
        self.classifier.learn(compare(records[key]["fields"], records[other_key]["fields"],
                                      self.config.comparisons), match)
        self.counters["confirmed_pairs_learned"] += 1
        return None

    def _decide(self, source: str, scored: list) -> list[str]:
        threshold = self.config.model.link_threshold
        above = [(k, s, p) for k, s, _, _, p in scored if p >= threshold]
        if not self.config.one_to_one:
            return [k for k, _, _ in above]
        best: dict[str, tuple[str, float]] = {}
        for k, s, p in above:
            if s not in best or p > best[s][1]:
                best[s] = (k, p)
        linked = []
        for k, _ in best.values():
            # One to one: a record whose entity already holds a record of this source is taken.
            entity = self.clusters.entity_of(k)
            if not any(split_key(r)[0] == source for r in self.clusters.records_of(entity)):
                linked.append(k)
        return linked

    def _maybe_refit(self) -> None:
        em = self.config.model.em
        seen = self.model.n_observed
        due = em.warmup_pairs if self.model.n_fits == 0 else self._fitted_at + em.refit_every
        if seen >= due:
            self.model.fit(em.iterations, em.tolerance)
            self._fitted_at = seen
            self.counters["model_fits"] += 1

    def save_models(self) -> list[str]:
        """Put the model (every pair observed since its last fit too) and the classifier into the state.

        The caller saves at its commit points (the app: after every batch, in the batch's
        transaction), so a linker rebuilt from the state observes no pair twice and learns no
        verdict twice. Returns the keys of ``state.model`` written.
        """
        self.state.model[self.config.name] = self.model.state() | {"fitted_at": self._fitted_at}
        if self.classifier is None:
            return [self.config.name]
        self.state.model[self._classifier_key] = self.classifier.state()
        return [self.config.name, self._classifier_key]
