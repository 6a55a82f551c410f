"""Model builds that can be retraced and reproduced: the build manifest, a minimal training job, reproduce.

A build reads fixed offset ranges of the records and labels topics, joins them by id, cuts
train/validation/test, trains a ``models/`` spec and saves the snapshot in the model store.
Its :class:`BuildManifest` records what makes that repeatable: per split the exact
topic/partition/offset ranges, the schema versions seen, the features, the sampling, the
code version (git commit), and SHA-256 digests of the bytes the build saw. The manifest
travels with the build's ``ml_model_build`` lineage (``metadata["manifest"]``), so
``mlstream lineage reproduce <build>`` can find it from the lineage alone.

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
import importlib.metadata
import json
import math
import random
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from confluent_kafka import Consumer, KafkaError, TopicPartition

from mlstream.errors import UserError
from mlstream.settings import REPO_ROOT, Settings

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
    order_sha256: str | None = None  # train only: the ids in learning order after sampling, one per line
    undecodable: int = 0     # records of the split that are not valid Avro (dead letters for the app; skipped)


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


# ----- pure parts ---------------------------------------------------------------------------

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


def sample(ids: list[str], labels: dict[str, Any], sampling: dict[str, Any]) -> list[str]:
    """The training ids in learning order after up- or down-sampling (deterministic for a seed).

    ``ratio`` is the wanted size of every smaller class relative to the largest (default 1:
    balanced). ``down`` drops examples of larger classes; ``up`` repeats examples of smaller ones.

    >>> labels = {"a": 1, "b": 0, "c": 0, "d": 0}
    >>> sample(["a", "b", "c", "d"], labels, {"method": "down", "seed": 1})
    ['a', 'b']
    >>> sample(["a", "b", "c", "d"], labels, {"method": "up", "seed": 1})
    ['a', 'a', 'a', 'b', 'c', 'd']
    """
    method = sampling.get("method", "none")
    if method == "none" or not ids:
        return list(ids)
    rng = random.Random(sampling.get("seed", 0))
    ratio = float(sampling.get("ratio", 1.0))
    by_class: dict[Any, list[str]] = {}
    for i in ids:
        by_class.setdefault(labels[i], []).append(i)
    position = {i: n for n, i in enumerate(ids)}
    chosen: list[str] = []
    if method == "down":
        smallest = min(len(members) for members in by_class.values())
        keep = max(1, math.ceil(smallest / ratio))
        for members in by_class.values():
            chosen += members if len(members) <= keep else rng.sample(members, keep)
    elif method == "up":
        largest = max(len(members) for members in by_class.values())
        want = max(1, math.floor(largest * ratio))
        for members in by_class.values():
            chosen += members + [rng.choice(members) for _ in range(max(0, want - len(members)))]
    else:
        raise UserError(f"sampling method {method!r}: use none, up or down")
    return sorted(chosen, key=lambda i: position[i])  # stable: repeats follow their original


def code_version(repo: Path = REPO_ROOT) -> str:
    """The git commit of the code, with ``-dirty`` if the work tree has uncommitted changes.

    An installed copy has no checkout (``repo`` is site-packages then, which may even lie inside
    some other repository): the installed distribution's version names its code instead.
    """
    if not (repo / ".git").exists():
        try:
            return f"mlstream=={importlib.metadata.version('mlstream')}"
        except importlib.metadata.PackageNotFoundError:
            return "unknown"
    try:
        commit = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True,
                                check=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True, timeout=10).stdout.strip()
        return commit + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


# ----- Kafka --------------------------------------------------------------------------------

def _consumer(settings: Settings) -> Consumer:
    return Consumer({"bootstrap.servers": settings.bootstrap_servers, "group.id": f"mlstream-build-{uuid.uuid4().hex}",
                     "enable.auto.commit": False, "enable.partition.eof": True})


def watermarks(settings: Settings, topic: str) -> tuple[dict[int, int], dict[int, int]]:
    """(low, high) offsets of every partition of ``topic``."""
    consumer = _consumer(settings)
    try:
        metadata = consumer.list_topics(topic, timeout=10).topics[topic]
        if metadata.error is not None:
            raise UserError(f"topic {topic}: {metadata.error}")
        marks = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10) for p in metadata.partitions}
    finally:
        consumer.close()
    return {p: low for p, (low, _) in marks.items()}, {p: high for p, (_, high) in marks.items()}


def read_exact(settings: Settings, ranges: list[OffsetRange], timeout_s: float = 60.0) -> list:
    """Every message in ``ranges``, ordered by topic, partition and offset; an error if any is gone."""
    ranges = [r for r in ranges if r.end > r.start]
    if not ranges:
        return []
    for topic in {r.topic for r in ranges}:
        low, _ = watermarks(settings, topic)
        for r in (r for r in ranges if r.topic == topic):
            if r.start < low.get(r.partition, 0):
                raise UserError(f"{topic}[{r.partition}] offsets {r.start}..{r.end - 1} are no longer in Kafka "
                                f"(retention deleted up to {low[r.partition] - 1}): the build cannot be re-read")
    consumer = _consumer(settings)
    wanted = {(r.topic, r.partition): r for r in ranges}
    consumer.assign([TopicPartition(r.topic, r.partition, r.start) for r in ranges])
    messages, done = [], set()
    deadline = time.monotonic() + timeout_s
    try:
        while len(done) < len(wanted):
            if time.monotonic() > deadline:
                missing = sorted(set(wanted) - done)
                raise UserError(f"timed out reading {missing}: are the offsets still there?")
            message = consumer.poll(0.5)
            if message is None:
                continue
            key = (message.topic(), message.partition())
            if message.error() is not None:
                if key in wanted and message.error().code() == KafkaError._PARTITION_EOF:
                    done.add(key)
                continue
            r = wanted[key]
            if message.offset() < r.end:
                messages.append(message)
            if message.offset() >= r.end - 1:
                done.add(key)
                consumer.pause([TopicPartition(r.topic, r.partition)])
    finally:
        consumer.close()
    return sorted(messages, key=lambda m: (m.topic(), m.partition(), m.offset()))


# ----- the training job ---------------------------------------------------------------------

@dataclass
class SplitData:
    records: list             # messages
    examples: list[tuple[str, dict, Any]]  # (id, features, label)
    label_messages: list      # the label messages joined to those records
    unlabeled: int
    undecodable: int


def join(record_messages: list, labels_by_id: dict[str, tuple[Any, Any]], decode_record) -> SplitData:
    from mlstream.kafka.serde import UndecodableValue

    examples, joined, unlabeled, undecodable = [], [], 0, 0
    for message in record_messages:
        try:
            record = decode_record(message.value())
        except UndecodableValue:
            undecodable += 1
            continue
        found = labels_by_id.get(record["id"])
        if found is None:
            unlabeled += 1
            continue
        label, label_message = found
        examples.append((record["id"], record["features"], label))
        joined.append(label_message)
    joined.sort(key=lambda m: (m.partition(), m.offset()))
    return SplitData(record_messages, examples, joined, unlabeled, undecodable)


def read_labels(settings: Settings, ranges: list[OffsetRange], decode_label) -> tuple[list, dict[str, tuple]]:
    """The label messages of ``ranges`` and id -> (label, message); a later label for the same id wins."""
    from mlstream.kafka.serde import UndecodableValue

    messages = read_exact(settings, ranges)
    by_id = {}
    for message in messages:
        try:
            label = decode_label(message.value())
        except UndecodableValue:
            continue  # not a label: nothing to join
        by_id[label["id"]] = (label["label"], message)
    return messages, by_id


def schema_versions(registry, subject: str, messages: list) -> list[int]:
    """The versions of ``subject`` whose schema ids the (Confluent-framed) messages carry."""
    from confluent_kafka.schema_registry import Schema
    from confluent_kafka.schema_registry.error import SchemaRegistryError

    versions = set()
    framed = {int.from_bytes(m.value()[1:5], "big") for m in messages
              if m.value() and len(m.value()) >= 5 and m.value()[0] == 0}
    for schema_id in framed:
        try:
            schema = registry.get_schema(schema_id)
            versions.add(registry.lookup_schema(subject, Schema(schema.schema_str, schema.schema_type)).version)
        except SchemaRegistryError as err:
            if err.http_status_code != 404:
                raise  # 404: an id from a garbage message, or a schema of another subject
    return sorted(versions)


def train(settings: Settings, *, model: str, spec: str, version: int, features: list[str] | None = None,
          sampling: dict[str, Any] | None = None, split_fractions: dict[str, float] | None = None,
          records_end: dict[int, int] | None = None, say: Callable[[str], None] = print) -> BuildManifest:
    """Train ``spec`` on what the records and labels topics hold now; save it; return the manifest."""
    import models
    from mlstream.scoring.model_store import FolderModelStore
    from mlstream.kafka.serde import TopicCodec, registry_client, value_subject

    fractions = dict(split_fractions or DEFAULT_SPLITS)
    sampling = dict(sampling or {"method": "none"})
    topics = settings.topics
    registry = registry_client(settings.schema_registry_url)
    records_codec = TopicCodec.for_topic(registry, topics.records, "record")
    labels_codec = TopicCodec.for_topic(registry, topics.labels, "label")

    records_low, records_high = watermarks(settings, topics.records)
    labels_low, labels_high = watermarks(settings, topics.labels)
    plan = plan_splits(topics.records, records_low, records_end or records_high, fractions)
    label_ranges = [OffsetRange(topics.labels, p, labels_low[p], labels_high[p]) for p in sorted(labels_high)
                    if labels_high[p] > labels_low[p]]
    label_messages, labels_by_id = read_labels(settings, label_ranges, labels_codec.decode)
    data = {name: join(read_exact(settings, plan[name]), labels_by_id, records_codec.decode) for name in SPLITS}
    say(f"build {model} v{version}: " + ", ".join(f"{n} {len(d.examples)} examples" for n, d in data.items())
        + f" ({sum(d.unlabeled for d in data.values())} records without a label and "
        f"{sum(d.undecodable for d in data.values())} undecodable ones left out)")
    if not data["train"].examples:
        raise UserError(f"no labelled records in {topics.records}: produce some first ('mlstream produce')")

    names = features or sorted({k for _, x, _ in data["train"].examples for k in x})
    train_labels = {i: y for i, _, y in data["train"].examples}
    train_x = {i: x for i, x, _ in data["train"].examples}
    order = sample([i for i, _, _ in data["train"].examples], train_labels, sampling)
    estimator = models.build(spec)
    for i in order:
        estimator.learn_one({k: train_x[i].get(k, 0.0) for k in names}, train_labels[i])
    metrics = {}
    for name in ("validation", "test"):
        examples = data[name].examples
        if examples:
            hits = sum(estimator.predict_one({k: x.get(k, 0.0) for k in names}) == y for _, x, y in examples)
            metrics[f"{name}_accuracy"] = hits / len(examples)
    FolderModelStore(settings.state_dir / "models").save(model, str(version),
                                                         {"estimator": estimator, "n_learned": len(order)})
    splits = [SplitManifest(
        name=name, records=plan[name], examples=len(d.examples), unlabeled=d.unlabeled, undecodable=d.undecodable,
        records_sha256=sha256(frames([m.value() for m in d.records])),
        labels_sha256=sha256(frames([m.value() for m in d.label_messages])),
        order_sha256=sha256("\n".join(order).encode()) if name == "train" else None,
    ) for name, d in data.items()]
    all_records = [m for d in data.values() for m in d.records]
    manifest = BuildManifest(
        model=model, spec=spec, version=version, created_at_ms=time.time_ns() // 1_000_000,
        code_version=code_version(), records_topic=topics.records, labels_topic=topics.labels, labels=label_ranges,
        schema_versions={value_subject(topics.records): schema_versions(registry, value_subject(topics.records),
                                                                        all_records),
                         value_subject(topics.labels): schema_versions(registry, value_subject(topics.labels),
                                                                       label_messages)},
        features=names, sampling=sampling, split_fractions=fractions, splits=splits, metrics=metrics)
    path = manifest_path(settings, model, version)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(manifest.to_json())
    say(f"build {model} v{version}: learned {len(order)} examples; "
        + ", ".join(f"{k} {v:.3f}" for k, v in metrics.items()) + f"; manifest {path}")
    return manifest


def manifest_path(settings: Settings, model: str, version: int) -> Path:
    return settings.state_dir / "builds" / model / str(version) / "manifest.json"


# ----- reproduce ----------------------------------------------------------------------------

def reproduce(settings: Settings, manifest: BuildManifest, out_dir: str | Path) -> dict[str, dict[str, Any]]:
    """Write each split's records, joined labels (and train's learning order) to ``out_dir``; check the digests.

    Returns, per split, the files written and whether each matches the manifest; raises
    UserError if any does not (the topic was rewritten, or the code changed how it joins).
    """
    from mlstream.kafka.serde import TopicCodec, registry_client

    registry = registry_client(settings.schema_registry_url)
    records_codec = TopicCodec.for_topic(registry, manifest.records_topic, "record")
    labels_codec = TopicCodec.for_topic(registry, manifest.labels_topic, "label")
    _, labels_by_id = read_labels(settings, manifest.labels, labels_codec.decode)
    out, report = Path(out_dir), {}
    for split in manifest.splits:
        folder = out / split.name
        folder.mkdir(parents=True, exist_ok=True)
        data = join(read_exact(settings, split.records), labels_by_id, records_codec.decode)
        files = {"records.bin": (frames([m.value() for m in data.records]), split.records_sha256),
                 "labels.bin": (frames([m.value() for m in data.label_messages]), split.labels_sha256)}
        if split.order_sha256 is not None:
            order = sample([i for i, _, _ in data.examples], {i: y for i, _, y in data.examples}, manifest.sampling)
            files["order.txt"] = ("\n".join(order).encode(), split.order_sha256)
        report[split.name] = {}
        for name, (content, expected) in files.items():
            (folder / name).write_bytes(content)
            report[split.name][name] = {"bytes": len(content), "sha256": sha256(content),
                                        "matches": sha256(content) == expected}
    (out / "manifest.json").write_text(manifest.to_json())
    bad = [f"{s}/{f}" for s, files in report.items() for f, r in files.items() if not r["matches"]]
    if bad:
        raise UserError(f"reproduced data differs from what build {manifest.model} v{manifest.version} saw: "
                        f"{', '.join(bad)} (written to {out} for inspection)")
    return report


# ----- lineage ------------------------------------------------------------------------------

def build_notification(settings: Settings, manifest: BuildManifest, registry, existing_topics: set[str],
                       declared=None) -> dict:
    """The build's ml_model_build lineage: the topics at the schema versions it read (plus whatever the
    lineage config declares for the model) -> ml_model_train_build_process -> ml_model_build.

    The manifest goes into the build's metadata, so the lineage alone is enough to reproduce it.
    """
    from mlstream.lineage.config import KafkaTopicRef, ModelLineage
    from mlstream.lineage.model_lineage import model_build_notification, registry_lookup
    from mlstream.kafka.serde import value_subject

    declared = declared or ModelLineage(name=manifest.model)
    read = tuple(KafkaTopicRef(topic, value_subject(topic), (manifest.schema_versions.get(value_subject(topic))
                                                            or [None])[-1])
                 for topic in (manifest.records_topic, manifest.labels_topic))
    model = dataclasses.replace(
        declared, name=manifest.model, features=tuple(manifest.features), sampling=manifest.sampling,
        splits=manifest.split_fractions,
        kafka_topics=read + tuple(t for t in declared.kafka_topics if t.topic not in {r.topic for r in read}))
    extra = {"manifest": manifest.to_json(), "codeVersion": manifest.code_version, "spec": manifest.spec}
    extra |= {f"metrics.{k}": f"{v:.6f}" for k, v in manifest.metrics.items()}
    extra |= {f"split.{s.name}.examples": str(s.examples) for s in manifest.splits}
    return model_build_notification(model, manifest.version, settings.atlas_namespace,
                                    bootstrap_servers=settings.bootstrap_servers, existing_topics=existing_topics,
                                    schema_lookup=registry_lookup(registry), user="mlstream", extra_metadata=extra,
                                    created_at_ms=manifest.created_at_ms)


def manifest_from_lineage(client, build: str, namespace: str) -> BuildManifest:
    """The manifest kept in an ml_model_build's metadata; ``build`` is its CRN, guid or ``<model>/<version>``."""
    from tools.lineage_views import find_entity

    entity = find_entity(client, build, namespace)
    manifest = (entity["attributes"].get("metadata") or {}).get("manifest")
    if entity["typeName"] != "ml_model_build" or not manifest:
        raise UserError(f"{build} is a {entity['typeName']} without a build manifest; name a model build made "
                        f"by 'mlstream train' (e.g. logistic_regression/2)")
    return BuildManifest.from_json(manifest)


def run_build(settings: Settings, *, model: str, spec: str, version: int,
              say: Callable[[str], None] = print) -> BuildManifest:
    """Train with the model's entry of the ``lineage`` config (features, sampling, splits), then report lineage."""
    from confluent_kafka.admin import AdminClient

    from mlstream.config_store import ConfigNotFound, SchemaRegistryConfigStore
    from mlstream.lineage.config import load_lineage_yaml
    from mlstream.lineage.emitter import LineageDeliveryError
    from mlstream.lineage.spool import lineage_emitter
    from mlstream.kafka.serde import registry_client

    import models

    if spec not in models.SPECS:
        raise UserError(f"no model spec {spec!r}: choose --spec from {', '.join(models.SPECS)}")
    registry = registry_client(settings.schema_registry_url)
    declared = None
    try:
        config = SchemaRegistryConfigStore(registry, settings.topics.prefix).get("lineage")
        declared = load_lineage_yaml(config.text, f"config lineage v{config.version}").get(model)
    except ConfigNotFound:
        pass
    manifest = train(settings, model=model, spec=spec, version=version,
                     features=list(declared.features) if declared and declared.features else None,
                     sampling=dict(declared.sampling) if declared and declared.sampling else None,
                     split_fractions={k: v for k, v in declared.splits.items() if k in SPLITS}
                     if declared and declared.splits else None, say=say)
    topics = set(AdminClient({"bootstrap.servers": settings.bootstrap_servers}).list_topics(timeout=10).topics)
    emitter = lineage_emitter(settings, key=f"build-{model}")
    emitter.emit(build_notification(settings, manifest, registry, topics, declared))
    try:
        emitter.flush()
    except LineageDeliveryError as err:
        say(f"build lineage not delivered yet: {err}")
    return manifest
