"""The one training path: a registry build from exact offset ranges, a rebuild from what it recorded, reproduce.

:func:`train_build` is what ``mlstream models build``, ``mlstream models rebuild`` (through
:func:`rebuild`), ``mlstream demo`` and ``mlstream demo rollback`` all train with:

1. the data: the records and labels topics as they are now (or the ranges a manifest recorded:
   a rebuild), records cut train/validation/test by offset (:mod:`mlstream.registry.manifest`)
   and joined to their labels by id;
2. the estimator: a ``models/`` spec with hyper-parameters, wrapped in river's ``imblearn``
   random under- or over-sampler if asked, learning with class weights if given;
3. per-class metrics on validation and test, and a digest of the predictions on a probe set;
4. the snapshot in the model store (``MLSTREAM_MODEL_STORE``), the build with its manifest in
   the registry, and the build's ``ml_model_build`` lineage.

Features reach the model as each record carries them: a feature missing from a record is
missing from what the model learns from or predicts on (river's models take sparse dicts),
never filled in with a value.

Everything that decides the result is recorded and replayed: the examples in partition
then offset order, the spec, its parameters, the sampler's seed and target distribution,
the class weights. River's estimators are deterministic given those, so a rebuild can be
checked against its original to the bit, and :func:`reproduce` writes a build's splits out
again byte for byte.

    >>> examples = [(str(i), {"x": float(i % 7)}, i % 7 == 0) for i in range(200)]
    >>> est = make_estimator("logistic_regression", {}, {"method": "under", "desired_dist": {"True": 0.5, "False": 0.5}}, 7, examples)
    >>> type(est).__name__
    'RandomUnderSampler'
    >>> fit(est, examples, {}); probe_digest(est, [x for _, x, _ in examples]) == probe_digest(est, [x for _, x, _ in examples])
    200
    True
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.metadata
import json
import subprocess
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import yaml
from confluent_kafka.schema_registry import Schema
from confluent_kafka.schema_registry.error import SchemaRegistryError

import models
from mlstream.config_store import ConfigNotFound, open_config_store
from mlstream.errors import UserError
from mlstream.features.view import FeatureView, RecordMismatch, load_feature_view
from mlstream.kafka import clients
from mlstream.kafka.reader import read_range, watermarks
from mlstream.kafka.serde import UndecodableValue, value_subject
from mlstream.kafka.topics import input_codec
from mlstream.lineage.config import KafkaTopicRef, LineageConfigError, ModelLineage, load_lineage_yaml
from mlstream.lineage.emitter import LineageDeliveryError
from mlstream.lineage.model_lineage import model_build_notification, registry_lookup
from mlstream.lineage.spool import lineage_emitter
from mlstream.registry.manifest import (DEFAULT_SPLITS, SPLITS, BuildManifest, OffsetRange, SplitManifest, frames,
                                        plan_splits, sha256)
from mlstream.registry.records import Build, ModelSpec
from mlstream.registry.registry import Registry
from mlstream.registry.snapshots import save_snapshot
from mlstream.scoring.model_store import ModelStore
from mlstream.security.secure_datasets import POLICY_HEADER, SECURE_INFIX
from mlstream.settings import REPO_ROOT, Settings

SAMPLERS = ("none", "under", "over")
PROBE_SIZE = 500
CONFIG_KEYS = {"spec", "params", "sampling", "class_weight", "seed"}
LINEAGE_CONFIG = "lineage"

Say = Callable[[str], None]


# ----- the model's spec and the build's settings ---------------------------------------------

def model_spec(registry: Registry, model: str, spec: str | None, params: dict | None, default_spec: str) -> ModelSpec:
    """The spec the next build of ``model`` uses: the registry's, unless ``spec`` or ``params`` change it
    (then recorded anew). The first build of a model records ``spec``, else ``default_spec``."""
    current = registry.spec(model)
    wanted = spec or (current.spec if current else default_spec)
    try:
        models.check(wanted)
    except ValueError as err:
        raise UserError(str(err)) from None
    kept = current.params if current is not None and current.spec == wanted else {}  # params belong to a spec
    wanted_params = kept if params is None else params
    if current is not None and (current.spec, current.params) == (wanted, wanted_params):
        return current
    return registry.add_spec(ModelSpec(model, wanted, wanted_params, created_at_ms=time.time_ns() // 1_000_000))


def build_settings_from_yaml(text: str, where: str) -> dict[str, Any]:
    """A build's settings kept as a versioned config (``mlstream config put NAME FILE``).

    >>> build_settings_from_yaml("{spec: hoeffding_tree, params: {grace_period: 50}, class_weight: {1: 5}}", "x")
    {'spec': 'hoeffding_tree', 'params': {'grace_period': 50}, 'class_weight': {'1': 5.0}}
    """
    raw = yaml.safe_load(text) or {}
    unknown = sorted(map(str, set(raw) - CONFIG_KEYS)) if isinstance(raw, dict) else [repr(raw)]
    if unknown:
        raise UserError(f"{where}: a build config is a mapping of {', '.join(sorted(CONFIG_KEYS))}; "
                        f"unknown: {', '.join(unknown)}")
    out = dict(raw)
    if "class_weight" in out:
        out["class_weight"] = {str(k): float(v) for k, v in out["class_weight"].items()}
    if "sampling" in out and "desired_dist" in out["sampling"]:
        out["sampling"] = {**out["sampling"], "desired_dist": {str(k): float(v)
                                                                for k, v in out["sampling"]["desired_dist"].items()}}
    return out


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


# ----- the data: exact offset ranges from Kafka, joined by id --------------------------------

@dataclass
class SplitData:
    records: list             # messages
    examples: list[tuple[str, dict, Any]]  # (id, features, label)
    label_messages: list      # the label messages joined to those records
    unlabeled: int
    undecodable: int


def ranges_now(settings: Settings, fractions: dict[str, float], records: str | None = None,
               labels: str | None = None) -> tuple[dict[str, list[OffsetRange]], list[OffsetRange]]:
    """The split plan of what the records topic holds now, and the labels topic's whole range
    (the project's topics, unless a feature view names others)."""
    records, labels = records or settings.topics.records, labels or settings.topics.labels
    records_low, records_high = watermarks(settings, records)
    labels_low, labels_high = watermarks(settings, labels)
    label_ranges = [OffsetRange(labels, p, labels_low[p], labels_high[p]) for p in sorted(labels_high)
                    if labels_high[p] > labels_low[p]]
    return plan_splits(records, records_low, records_high, fractions), label_ranges


def read_ranges(settings: Settings, ranges: list[OffsetRange]) -> list:
    """Every message of ``ranges`` (of one topic, one range per partition); an error if any is gone."""
    if not ranges:
        return []
    topic = ranges[0].topic
    if any(r.topic != topic for r in ranges) or len({r.partition for r in ranges}) != len(ranges):
        raise UserError(f"offset ranges {ranges}: a split reads one topic, one range per partition")
    first, _ = watermarks(settings, topic)
    for r in ranges:
        if r.end > r.start and r.start < first.get(r.partition, 0):
            raise UserError(f"{topic}[{r.partition}] offsets {r.start}..{r.end - 1} are no longer in Kafka "
                            f"(retention deleted up to {first[r.partition] - 1}): the build cannot be re-read")
    return read_range(settings, topic, {r.partition: r.start for r in ranges},
                      {r.partition: r.end for r in ranges})


def join(record_messages: list, labels_by_id: dict[str, tuple[Any, Any]], decode_record, view: FeatureView
         ) -> SplitData:
    """Each record read through ``view``, joined to its label; one that does not decode or fit is left out."""
    examples, joined, unlabeled, undecodable = [], [], 0, 0
    for message in record_messages:
        try:
            record = view.record_from(decode_record(message.value()), message.key())
        except (UndecodableValue, RecordMismatch):
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


def read_labels(settings: Settings, ranges: list[OffsetRange], decode_label, view: FeatureView
                ) -> tuple[list, dict[str, tuple]]:
    """The label messages of ``ranges`` and id -> (label, message); a later label for the same id wins."""
    messages = read_ranges(settings, ranges)
    by_id = {}
    for message in messages:
        try:
            record_id, label, _ = view.label_from(decode_label(message.value()), message.key())
        except (UndecodableValue, RecordMismatch):
            continue  # not a label: nothing to join
        by_id[record_id] = (label, message)
    return messages, by_id


def read_splits(settings: Settings, schema_registry, records_topic: str, labels_topic: str,
                plan: dict[str, list[OffsetRange]], label_ranges: list[OffsetRange], view: FeatureView
                ) -> tuple[list, dict[str, SplitData]]:
    """(the label messages, each split's records joined to their labels), read through ``view``."""
    records_codec = input_codec(schema_registry, settings, records_topic)
    labels_codec = input_codec(schema_registry, settings, labels_topic)
    label_messages, labels_by_id = read_labels(settings, label_ranges, labels_codec.decode, view)
    return label_messages, {name: join(read_ranges(settings, plan.get(name, [])), labels_by_id, records_codec.decode,
                                       view) for name in SPLITS}


def secure_dataset_of(topic: str, messages: list) -> dict | None:
    """The secure dataset a build read, and the policy versions that produced its records (their headers)."""
    if SECURE_INFIX not in topic:
        return None
    versions = {value.decode() for m in messages for key, value in (m.headers() or []) if key == POLICY_HEADER}
    return {"topic": topic, "policy_versions": sorted(versions)}


def schema_versions(registry, subject: str, messages: list) -> list[int]:
    """The versions of ``subject`` whose schema ids the (Confluent-framed) messages carry."""
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


def learning_order(split: SplitData) -> bytes:
    """The ids of a split's examples in the order the model learns them (the sampler decides within)."""
    return "\n".join(i for i, _, _ in split.examples).encode()


# ----- the estimator: Kafka-free ------------------------------------------------------------

def label_of(text: str, labels: set) -> Any:
    """The label among ``labels`` whose text is ``text`` (JSON keys are strings; labels may be booleans)."""
    for label in labels:
        if str(label) == text:
            return label
    raise UserError(f"class {text!r} does not occur in the training data (classes: {sorted(map(str, labels))})")


def make_estimator(spec: str, params: dict[str, Any], sampling: dict[str, Any], seed: int, examples: list):
    """A fresh ``models/`` spec with ``params``, wrapped in river's random sampler if asked."""
    from river import imblearn  # river's submodules take about 2 s to import: only builds pay for them

    estimator = models.build(spec)
    if params:
        estimator = estimator.clone(params)
    method = sampling.get("method", "none")
    if method not in SAMPLERS:
        raise UserError(f"sampling method {method!r}: use one of {', '.join(SAMPLERS)}")
    if method == "none":
        return estimator
    classes = {y for _, _, y in examples}
    desired = {label_of(k, classes): float(v) for k, v in sampling["desired_dist"].items()}
    sampler = imblearn.RandomUnderSampler if method == "under" else imblearn.RandomOverSampler
    return sampler(estimator, desired_dist=desired, seed=int(sampling.get("seed", seed)))


def fit(estimator, examples: list, class_weight: dict[str, float]) -> int:
    """Learn the examples in their order, each weighted by its class; return how many."""
    classes = {y for _, _, y in examples}
    weights = {label_of(k, classes): float(w) for k, w in class_weight.items()}
    for _, x, y in examples:
        if weights:
            estimator.learn_one(x, y, w=weights.get(y, 1.0))
        else:
            estimator.learn_one(x, y)
    return len(examples)


def probe_digest(estimator, probe: list[dict]) -> str:
    """SHA-256 over the predictions on ``probe``: each class's probability as an exact hex float."""
    h = hashlib.sha256()
    for x in probe:
        if hasattr(estimator, "predict_proba_one"):
            proba = estimator.predict_proba_one(x)
            h.update(repr(sorted((repr(k), float(v).hex()) for k, v in proba.items())).encode())
        else:
            h.update(repr(estimator.predict_one(x)).encode())
        h.update(b"\n")
    return h.hexdigest()


def per_class_metrics(estimator, examples: list) -> dict[str, Any]:
    """Accuracy, and precision / recall / F1 / support for each class."""
    pairs = [(y, estimator.predict_one(x)) for _, x, y in examples]
    if not pairs:
        return {}
    tp, predicted, actual = Counter(), Counter(), Counter()
    for y, p in pairs:
        actual[y] += 1
        predicted[p] += 1
        tp[y] += y == p
    classes = {}
    for c in sorted(actual, key=str):
        precision = tp[c] / predicted[c] if predicted[c] else 0.0
        recall = tp[c] / actual[c]
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        classes[str(c)] = {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4),
                           "support": actual[c]}
    return {"accuracy": round(sum(tp.values()) / len(pairs), 4), "examples": len(pairs), "classes": classes}


def train_examples(spec: str, params: dict, sampling: dict, class_weight: dict, seed: int,
                   train: list, evaluate: dict[str, list], probe: list[dict]) -> tuple[Any, dict, str, int]:
    """The Kafka-free job: (estimator, metrics per split, probe digest, examples learned)."""
    estimator = make_estimator(spec, params, sampling, seed, train)
    learned = fit(estimator, train, class_weight)
    metrics = {name: per_class_metrics(estimator, examples) for name, examples in evaluate.items() if examples}
    return estimator, metrics, probe_digest(estimator, probe), learned


# ----- the build ----------------------------------------------------------------------------

def train_build(settings: Settings, registry: Registry, store: ModelStore, *, model: str, spec: str,
                params: dict | None = None, sampling: dict | None = None, class_weight: dict | None = None,
                seed: int = 0, split_fractions: dict | None = None, parent: str | None = None,
                manifest: BuildManifest | None = None, version: str | None = None, config: str = "",
                say: Say = print) -> Build:
    """Read the data (the ranges of ``manifest`` when given: a rebuild), train, store the snapshot, register
    the build (as ``version``, default: the model's next) and report its lineage."""
    params, sampling, class_weight = dict(params or {}), dict(sampling or {"method": "none"}), dict(class_weight or {})
    if version in {b.version for b in registry.builds(model)}:  # before its snapshot is overwritten
        raise UserError(f"build {model}/{version} exists already; builds are immutable")
    version = version or registry.next_version(model)
    schema_registry = clients.registry_client(settings)
    if manifest is None:
        view = load_feature_view(settings)  # MLSTREAM_FEATURE_VIEW's, as the app reads the stream
        records_topic, labels_topic = view.records_topic, view.labels_topic
        fractions = dict(split_fractions or DEFAULT_SPLITS)
        plan, label_ranges = ranges_now(settings, fractions, records_topic, labels_topic)
    else:
        view = load_feature_view(settings, ref=manifest.feature_view)  # the version the build read through
        records_topic, labels_topic = manifest.records_topic, manifest.labels_topic
        fractions = manifest.split_fractions
        plan, label_ranges = {s.name: s.records for s in manifest.splits}, manifest.labels
    started = time.perf_counter()
    label_messages, data = read_splits(settings, schema_registry, records_topic, labels_topic, plan, label_ranges,
                                       view)
    read_s = time.perf_counter() - started
    train = data["train"].examples
    if not train:
        raise UserError(f"no labelled records in {records_topic}: produce some first ('mlstream produce')")
    say(f"build {model}/{version}: " + ", ".join(f"{n} {len(d.examples)}" for n, d in data.items())
        + f" examples read in {read_s:.1f}s ({sum(d.unlabeled for d in data.values())} records without a label "
        f"and {sum(d.undecodable for d in data.values())} undecodable or not fitting feature view {view.ref} "
        f"left out)")
    probe = [x for _, x, _ in (data["test"].examples or data["validation"].examples or train)[:PROBE_SIZE]]
    estimator, metrics, digest, learned = train_examples(
        spec, params, sampling, class_weight, seed, train,
        {"validation": data["validation"].examples, "test": data["test"].examples}, probe)
    train_s = time.perf_counter() - started - read_s
    key, snapshot_sha = save_snapshot(store, model, version, estimator)
    features = sorted({k for _, x, _ in train for k in x})
    all_records = [m for d in data.values() for m in d.records]
    splits = [SplitManifest(
        name=name, records=plan.get(name, []), examples=len(d.examples), unlabeled=d.unlabeled,
        undecodable=d.undecodable, records_sha256=sha256(frames([m.value() for m in d.records])),
        labels_sha256=sha256(frames([m.value() for m in d.label_messages])),
        order_sha256=sha256(learning_order(d)) if name == "train" else None,
    ) for name, d in data.items()]
    new_manifest = BuildManifest(
        model=model, spec=spec, version=int(version), created_at_ms=time.time_ns() // 1_000_000,
        code_version=code_version(), records_topic=records_topic, labels_topic=labels_topic, labels=label_ranges,
        schema_versions={value_subject(records_topic): schema_versions(schema_registry, value_subject(records_topic),
                                                                       all_records),
                         value_subject(labels_topic): schema_versions(schema_registry, value_subject(labels_topic),
                                                                      label_messages)},
        features=features, sampling={**sampling, "class_weight": class_weight, "seed": seed},
        split_fractions=fractions, splits=splits,
        metrics={f"{split}_accuracy": m["accuracy"] for split, m in metrics.items()}, feature_view=view.ref,
        secure_dataset=secure_dataset_of(records_topic, all_records))
    build = Build(model=model, version=version, spec=spec, params=params, parent=parent, sampling=sampling,
                  class_weight=class_weight, seed=seed, features=features, metrics=metrics,
                  data=json.loads(new_manifest.to_json()), code_version=new_manifest.code_version, config=config,
                  snapshot=store.location(key), snapshot_key=key, snapshot_sha256=snapshot_sha, probe_sha256=digest,
                  examples_learned=learned, train_seconds=round(train_s, 3), created_at_ms=new_manifest.created_at_ms)
    registry.add_build(build)
    report_lineage(settings, schema_registry, new_manifest, say)
    say(f"build {model}/{version}: learned {learned} examples in {train_s:.2f}s; "
        + ", ".join(f"{split} accuracy {m['accuracy']:.3f}" for split, m in metrics.items())
        + f"; snapshot {build.snapshot}")
    for split, m in metrics.items():
        say(f"build {model}/{version}: {split} per class: " + "; ".join(
            f"{c}: precision {f['precision']:.3f} recall {f['recall']:.3f} f1 {f['f1']:.3f} (n={f['support']})"
            for c, f in m["classes"].items()))
    return build


def rebuild(settings: Settings, registry: Registry, store: ModelStore, ref: str, changes: dict | None = None,
            say: Say = print) -> tuple[Build, Build, bool]:
    """Train ``ref`` again from the exact data its manifest recorded; ``changes`` (sampling, class_weight,
    params, seed) make it a fixed build instead of an identical one. Returns (original, new build, identical?)."""
    original = registry.build(ref)
    changes = changes or {}
    new = train_build(settings, registry, store, model=original.model, spec=original.spec,
                      params=changes.get("params", original.params),
                      sampling=changes.get("sampling", original.sampling),
                      class_weight=changes.get("class_weight", original.class_weight),
                      seed=changes.get("seed", original.seed), parent=original.version,
                      manifest=manifest_of(original), config=original.config, say=say)
    return original, new, new.probe_sha256 == original.probe_sha256


def manifest_of(build: Build) -> BuildManifest:
    return BuildManifest.from_json(json.dumps(build.data))


# ----- reproduce ----------------------------------------------------------------------------

def reproduce(settings: Settings, manifest: BuildManifest, out_dir: str | Path) -> dict[str, dict[str, Any]]:
    """Write each split's records, joined labels (and train's learning order) to ``out_dir``; check the digests.

    Returns, per split, the files written and whether each matches the manifest; raises
    UserError if any does not (the topic was rewritten, or the code changed how it joins).
    """
    _, data = read_splits(settings, clients.registry_client(settings), manifest.records_topic,
                          manifest.labels_topic, {s.name: s.records for s in manifest.splits}, manifest.labels,
                          load_feature_view(settings, ref=manifest.feature_view))
    out, report = Path(out_dir), {}
    for split in manifest.splits:
        folder = out / split.name
        folder.mkdir(parents=True, exist_ok=True)
        d = data[split.name]
        files = {"records.bin": (frames([m.value() for m in d.records]), split.records_sha256),
                 "labels.bin": (frames([m.value() for m in d.label_messages]), split.labels_sha256)}
        if split.order_sha256 is not None:
            files["order.txt"] = (learning_order(d), split.order_sha256)
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

def declared_lineage(settings: Settings, model: str, say: Say) -> ModelLineage | None:
    """The model's entry in the ``lineage`` config (owner, team, more datasets), if it has one."""
    try:
        config = open_config_store(settings).get(LINEAGE_CONFIG)
        return load_lineage_yaml(config.text, f"config {LINEAGE_CONFIG} v{config.version}").get(model)
    except ConfigNotFound:
        return None
    except LineageConfigError as err:  # the build is made: report its lineage without the broken config
        say(f"build {model}: lineage config ignored: {err}")
        return None


def build_notification(settings: Settings, manifest: BuildManifest, registry, existing_topics: set[str],
                       declared: ModelLineage | None = None) -> dict:
    """The build's ml_model_build lineage: the topics at the schema versions it read (plus whatever the
    lineage config declares for the model) -> ml_model_train_build_process -> ml_model_build.

    The manifest goes into the build's metadata, so the lineage alone says what the build read.
    """
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


def report_lineage(settings: Settings, schema_registry, manifest: BuildManifest, say: Say) -> None:
    """Send the build's lineage; what cannot be sent now is spooled and sent with the next that gets through."""
    topics = set(clients.admin(settings).list_topics(timeout=10).topics)
    emitter = lineage_emitter(settings, key=f"build-{manifest.model}")
    emitter.emit(build_notification(settings, manifest, schema_registry, topics,
                                    declared_lineage(settings, manifest.model, say)))
    try:
        emitter.flush()
    except LineageDeliveryError as err:
        say(f"build {manifest.model}/{manifest.version}: lineage not delivered yet ({err})")
