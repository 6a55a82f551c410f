"""Train a build from exact offset ranges, and train it again (rebuild) from what it recorded.

The Kafka side (which messages, split by offset, joined to their labels) is issue 4's
training job in :mod:`mlstream.registry.builds` (its manifest records the ranges and digests); this
module adds what a registry build needs on top: hyper-parameters, river's ``imblearn``
random under/over-samplers and class weights, per-class metrics, the snapshot in the model
store, and a digest of the predictions on a probe set, so that a rebuild can be checked
against its original to the bit.

Everything that decides the result is recorded and replayed: the examples in partition
then offset order, the spec, its parameters, the sampler's seed and target distribution,
the class weights. River's estimators are deterministic given those.

    >>> examples = [(str(i), {"x": float(i % 7)}, i % 7 == 0) for i in range(200)]
    >>> est = make_estimator("logistic_regression", {}, {"method": "under", "desired_dist": {"True": 0.5, "False": 0.5}}, 7, examples)
    >>> type(est).__name__
    'RandomUnderSampler'
    >>> fit(est, examples, {}); probe_digest(est, [x for _, x, _ in examples]) == probe_digest(est, [x for _, x, _ in examples])
    200
    True
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from typing import Any, Callable

SAMPLERS = ("none", "under", "over")
PROBE_SIZE = 500


def label_of(text: str, labels: set) -> Any:
    """The label among ``labels`` whose text is ``text`` (JSON keys are strings; labels may be booleans)."""
    for label in labels:
        if str(label) == text:
            return label
    raise ValueError(f"class {text!r} does not occur in the training data (classes: {sorted(map(str, labels))})")


CONFIG_KEYS = {"spec", "params", "sampling", "class_weight", "seed"}


def build_settings_from_yaml(text: str, where: str) -> dict[str, Any]:
    """A build's settings kept as a versioned config (``mlstream config put NAME FILE``).

    >>> build_settings_from_yaml("{spec: hoeffding_tree, params: {grace_period: 50}, class_weight: {1: 5}}", "x")
    {'spec': 'hoeffding_tree', 'params': {'grace_period': 50}, 'class_weight': {'1': 5.0}}
    """
    import yaml

    from mlstream.errors import UserError

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


def make_estimator(spec: str, params: dict[str, Any], sampling: dict[str, Any], seed: int, examples: list):
    """A fresh ``models/`` spec with ``params``, wrapped in river's random sampler if asked."""
    import models
    from river import imblearn

    estimator = models.build(spec)
    if params:
        estimator = estimator.clone(params)
    method = sampling.get("method", "none")
    if method not in SAMPLERS:
        raise ValueError(f"sampling method {method!r}: use one of {', '.join(SAMPLERS)}")
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


def train_build(settings, registry, store, *, model: str, spec: str, params: dict | None = None,
                sampling: dict | None = None, class_weight: dict | None = None, seed: int = 0,
                split_fractions: dict | None = None, parent: str | None = None, manifest=None, config: str = "",
                say: Callable[[str], None] = print):
    """Read the data (the ranges of ``manifest`` when given: a rebuild), train, store the snapshot, register."""
    from mlstream.registry import builds
    from mlstream.errors import UserError
    from mlstream.registry.records import Build
    from mlstream.registry.snapshots import save_snapshot
    from mlstream.kafka.serde import TopicCodec, registry_client, value_subject

    params, sampling, class_weight = dict(params or {}), dict(sampling or {"method": "none"}), dict(class_weight or {})
    version = registry.next_version(model)
    topics = settings.topics
    schema_registry = registry_client(settings.schema_registry_url)
    records_topic = manifest.records_topic if manifest else topics.records
    labels_topic = manifest.labels_topic if manifest else topics.labels
    records_codec = TopicCodec.for_topic(schema_registry, records_topic, "record")
    labels_codec = TopicCodec.for_topic(schema_registry, labels_topic, "label")
    if manifest is None:
        fractions = dict(split_fractions or builds.DEFAULT_SPLITS)
        records_low, records_high = builds.watermarks(settings, records_topic)
        labels_low, labels_high = builds.watermarks(settings, labels_topic)
        plan = builds.plan_splits(records_topic, records_low, records_high, fractions)
        label_ranges = [builds.OffsetRange(labels_topic, p, labels_low[p], labels_high[p]) for p in sorted(labels_high)
                        if labels_high[p] > labels_low[p]]
    else:
        fractions = manifest.split_fractions
        plan = {s.name: s.records for s in manifest.splits}
        label_ranges = manifest.labels
    started = time.perf_counter()
    label_messages, labels_by_id = builds.read_labels(settings, label_ranges, labels_codec.decode)
    data = {name: builds.join(builds.read_exact(settings, plan.get(name, [])), labels_by_id, records_codec.decode)
            for name in builds.SPLITS}
    read_s = time.perf_counter() - started
    train = data["train"].examples
    if not train:
        raise UserError(f"no labelled records in {records_topic}: produce some first ('mlstream produce')")
    say(f"build {model}/{version}: " + ", ".join(f"{n} {len(d.examples)}" for n, d in data.items())
        + f" examples read in {read_s:.1f}s")
    probe = [x for _, x, _ in (data["test"].examples or data["validation"].examples or train)[:PROBE_SIZE]]
    estimator, metrics, digest, learned = train_examples(
        spec, params, sampling, class_weight, seed, train,
        {"validation": data["validation"].examples, "test": data["test"].examples}, probe)
    train_s = time.perf_counter() - started - read_s
    key, snapshot_sha = save_snapshot(store, model, version, estimator)
    features = sorted({k for _, x, _ in train for k in x})
    all_records = [m for d in data.values() for m in d.records]
    splits = [builds.SplitManifest(
        name=name, records=plan.get(name, []), examples=len(d.examples), unlabeled=d.unlabeled,
        undecodable=d.undecodable,
        records_sha256=builds.sha256(builds.frames([m.value() for m in d.records])),
        labels_sha256=builds.sha256(builds.frames([m.value() for m in d.label_messages])),
        order_sha256=builds.sha256("\n".join(i for i, _, _ in d.examples).encode()) if name == "train" else None,
    ) for name, d in data.items()]
    new_manifest = builds.BuildManifest(
        model=model, spec=spec, version=int(version), created_at_ms=time.time_ns() // 1_000_000,
        code_version=builds.code_version(), records_topic=records_topic, labels_topic=labels_topic,
        labels=label_ranges,
        schema_versions={value_subject(records_topic): builds.schema_versions(
                             schema_registry, value_subject(records_topic), all_records),
                         value_subject(labels_topic): builds.schema_versions(
                             schema_registry, value_subject(labels_topic), label_messages)},
        features=features, sampling={**sampling, "class_weight": class_weight, "seed": seed},
        split_fractions=fractions, splits=splits,
        metrics={f"{split}_accuracy": m["accuracy"] for split, m in metrics.items()})
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


def report_lineage(settings, schema_registry, manifest, say: Callable[[str], None]) -> None:
    """The build's ``ml_model_build`` lineage (issue 4's), its manifest carrying sampling, weights and seed."""
    from confluent_kafka.admin import AdminClient

    from mlstream.registry.builds import build_notification
    from mlstream.lineage.emitter import LineageDeliveryError
    from mlstream.lineage.spool import lineage_emitter

    topics = set(AdminClient({"bootstrap.servers": settings.bootstrap_servers}).list_topics(timeout=10).topics)
    emitter = lineage_emitter(settings, key=f"build-{manifest.model}")
    emitter.emit(build_notification(settings, manifest, schema_registry, topics))
    try:
        emitter.flush()
    except LineageDeliveryError as err:  # spooled: sent with the next lineage that gets through
        say(f"build {manifest.model}/{manifest.version}: lineage not delivered yet ({err})")


def rebuild(settings, registry, store, ref: str, changes: dict | None = None, say: Callable[[str], None] = print):
    """Train ``ref`` again from the exact data its manifest recorded; ``changes`` (sampling, class_weight,
    params, seed) make it a fixed build instead of an identical one. Returns (new build, identical?)."""
    from mlstream.registry.builds import BuildManifest

    original = registry.build(ref)
    manifest = BuildManifest.from_json(json.dumps(original.data))
    changes = changes or {}
    new = train_build(settings, registry, store, model=original.model, spec=original.spec,
                      params=changes.get("params", original.params),
                      sampling=changes.get("sampling", original.sampling),
                      class_weight=changes.get("class_weight", original.class_weight),
                      seed=changes.get("seed", original.seed), parent=original.version, manifest=manifest,
                      config=original.config, say=say)
    return original, new, new.probe_sha256 == original.probe_sha256
