"""A build's manifest: exactly which messages it read and how it cut them, so it can be read again.

Per split the topic/partition/offset ranges, the schema versions seen, the features, the
sampling, the code version (git commit), and SHA-256 digests of the bytes the build saw.
A registry build keeps its manifest (``Build.data``); its ``ml_model_build`` lineage
carries it too (``metadata["manifest"]``).

Splits are cut by offset, per partition: the oldest ``train`` share of each partition's
range is the training split, then validation, then test. In a stream that is also time
order, so a model is never validated on records older than those it learned from.

Bytes are written as frames: a 4-byte big-endian length, then the message value exactly as
stored in Kafka (Confluent-framed Avro), in partition then offset order.

    >>> plan_splits("t", {0: 0, 1: 10}, {0: 10, 1: 30}, {"train": 0.7, "validation": 0.2, "test": 0.1})["test"]
    [OffsetRange(topic='t', partition=0, start=9, end=10), OffsetRange(topic='t', partition=1, start=28, end=30)]
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any

from mlstream.features.view import DEFAULT_REF

SPLITS = ("train", "validation", "test")
DEFAULT_SPLITS = {"train": 0.7, "validation": 0.15, "test": 0.15}
MANIFEST_VERSION = 1


@dataclass(frozen=True)
class OffsetRange:
    """Messages ``start`` (inclusive) to ``end`` (exclusive) of one topic partition."""

    topic: str
    partition: int
    start: int
    end: int


@dataclass(frozen=True)
class SplitManifest:
    name: str
    records: list[OffsetRange]
    examples: int            # records of the split that had a label
    unlabeled: int           # records of the split without a label in the label ranges (not used)
    records_sha256: str      # frames of every record message of the split
    labels_sha256: str       # frames of the label messages joined to them, in label offset order
    order_sha256: str | None = None  # train only: the ids in learning order, one per line
    undecodable: int = 0     # records of the split not valid Avro or not fitting the view (skipped)


@dataclass(frozen=True)
class BuildManifest:
    model: str
    spec: str
    version: int
    created_at_ms: int
    code_version: str
    records_topic: str
    labels_topic: str
    labels: list[OffsetRange]
    schema_versions: dict[str, list[int]]
    features: list[str]
    sampling: dict[str, Any]
    split_fractions: dict[str, float]
    splits: list[SplitManifest]
    metrics: dict[str, float] = field(default_factory=dict)
    manifest_version: int = MANIFEST_VERSION
    #: NAME@VERSION of the feature view that read the records and labels (manifests before views: the Record shape)
    feature_view: str = DEFAULT_REF
    #: When the records are a secure dataset (``<topic>.secure.<team>``): the topic and the policy versions that
    #: produced the records read (their ``mlstream.policy`` headers); None for any other topic
    secure_dataset: dict[str, Any] | None = None

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "BuildManifest":
        raw = json.loads(text)
        raw["labels"] = [OffsetRange(**r) for r in raw["labels"]]
        raw["splits"] = [SplitManifest(**{**s, "records": [OffsetRange(**r) for r in s["records"]]})
                         for s in raw["splits"]]
        return cls(**raw)

    def split(self, name: str) -> SplitManifest:
        return next(s for s in self.splits if s.name == name)


def plan_splits(topic: str, start: dict[int, int], end: dict[int, int],
                fractions: dict[str, float]) -> dict[str, list[OffsetRange]]:
    """Cut each partition's [start, end) into consecutive train, validation and test ranges."""
    plan: dict[str, list[OffsetRange]] = {name: [] for name in SPLITS}
    for partition in sorted(end):
        low, high = start.get(partition, 0), end[partition]
        n = max(high - low, 0)
        cut_train = low + math.floor(n * fractions.get("train", 0))
        cut_validation = cut_train + math.floor(n * fractions.get("validation", 0))
        bounds = {"train": (low, cut_train), "validation": (cut_train, cut_validation), "test": (cut_validation, high)}
        for name, (a, b) in bounds.items():
            if b > a:
                plan[name].append(OffsetRange(topic, partition, a, b))
    return plan


def frames(values: list[bytes]) -> bytes:
    return b"".join(len(v).to_bytes(4, "big") + v for v in values)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
