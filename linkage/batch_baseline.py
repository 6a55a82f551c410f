"""The batch baseline: the same records linked at once with the ``recordlinkage`` toolkit.

Same config, same normalization, same blocking keys (each one a ``Block`` index in
recordlinkage, their union the candidate pairs), then recordlinkage's ``Compare`` with
each comparison as a binary feature at its lowest threshold, and its unsupervised
``ECMClassifier`` (Fellegi-Sunter by EM). What it does not have is arrival order: it
sees every record before deciding, which is the streaming linker's handicap.
"""

from __future__ import annotations

import time

import pandas as pd

from linkage.blocking import blocking_keys
from linkage.config import ConfigError, LinkageConfig
from linkage.datasets import SourceRecord
from linkage.evaluation import pair_figures
from linkage.keys import record_key
from linkage.normalize import normalize_record

RECORDLINKAGE_METHODS = {"jaro_winkler": "jarowinkler", "levenshtein": "levenshtein",
                         "damerau_levenshtein": "damerau_levenshtein", "token_set": "qgram"}


def _frame(config: LinkageConfig, records: list[SourceRecord]) -> pd.DataFrame:
    rows = {}
    for r in records:
        fields = normalize_record(r.fields, config)
        keys = dict(k.split(":", 1) for k in blocking_keys(fields, config.blocking))
        rows[record_key(r.source, r.record_id)] = fields | {f"block_{k.name}": keys.get(k.name)
                                                           for k in config.blocking}
    return pd.DataFrame.from_dict(rows, orient="index")


def link_batch(config: LinkageConfig, records: list[SourceRecord]) -> dict:
    """Link ``records`` in one batch; returns the linked pairs (record keys), candidates and seconds."""
    import recordlinkage
    from recordlinkage.index import Block

    started = time.perf_counter()
    indexer = recordlinkage.Index()
    for key in config.blocking:
        indexer.add(Block(f"block_{key.name}"))
    if config.mode == "link":
        sources = sorted({r.source for r in records})
        if len(sources) != 2:
            raise ConfigError(f"the batch baseline links exactly two sources, and these records come from "
                              f"{len(sources)}: {sources}; use more records, or a config with mode: dedupe")
        frames = [_frame(config, [r for r in records if r.source == s]) for s in sources]
        candidates = indexer.index(*frames)
    else:
        frames = [_frame(config, records)]
        candidates = indexer.index(frames[0])
    compare = recordlinkage.Compare()
    for c in config.comparisons:
        if c.method in RECORDLINKAGE_METHODS:
            compare.string(c.field, c.field, method=RECORDLINKAGE_METHODS[c.method], threshold=c.levels[-1],
                           label=c.field)
        else:  # exact, and dates and numbers, which recordlinkage compares as equal or not
            compare.exact(c.field, c.field, label=c.field)
    if len(candidates):
        features = compare.compute(candidates, *frames)
        matches = recordlinkage.ECMClassifier(binarize=None).fit_predict(features.astype(int))
    else:  # too few records to share a blocking key: nothing to classify (EM needs one pair at least)
        matches = []
    seconds = time.perf_counter() - started
    return {
        "linked_pairs": {frozenset(pair) for pair in matches},
        "candidate_pairs": {frozenset(pair) for pair in candidates},
        "seconds": seconds,
    }


def baseline_quality(config: LinkageConfig, records: list[SourceRecord], true_pairs: set[frozenset[str]],
                     possible_pairs: int) -> dict:
    result = link_batch(config, records)
    linked, candidates = result["linked_pairs"], result["candidate_pairs"]
    figures = pair_figures(records=len(records), true_pairs=len(true_pairs), possible_pairs=possible_pairs,
                           candidate_pairs=len(candidates), true_candidates=len(candidates & true_pairs),
                           linked_pairs=len(linked), true_positives=len(linked & true_pairs))
    return {"method": "recordlinkage 0.16: Block on each config blocking key, Compare (binary at the lowest "
                      "threshold), ECMClassifier"} | figures | {
        "seconds": round(result["seconds"], 2),
        "records_per_second": round(len(records) / result["seconds"], 1) if result["seconds"] else None,
    }
