"""Job ``warm-start``: train a river model on a Spark training split and register it as a build.

The model learns the ``<db>.<splits>_v<n>_train`` table row by row in offset order (as the
stream showed them) and is scored on the validation split. The estimator becomes a build
of the model registry (:mod:`mlstream.registry`): its snapshot in the model store, the
split manifest (offset ranges, sampling, row digests) as its data, the validation accuracy
as its metrics. ``--deploy`` then hot-deploys it to the running stream app
(``MLSTREAM_APP_ID``), which serves it from the next record and keeps learning from the
labels it sees; later ``mlstream models deploy <model>/<version>`` does the same.

The run's figures also go through the metrics API (an experiment run of the
``spark-warm-start`` deployment), and its lineage is split tables -> ``spark_process`` ->
``ml_model_build``.
"""

from __future__ import annotations

import json
import time
from typing import Callable

import models
from mlstream.errors import UserError
from mlstream.metrics import KafkaMetricsSink, MetricsTracker
from mlstream.registry import Build
from mlstream.registry.control import ControlChannel, deploy_command
from mlstream.registry.metadata_log import open_registry
from mlstream.registry.snapshots import save_snapshot
from mlstream.scoring.model_store import open_model_store
from mlstream.settings import Settings
from spark_jobs import lineage
from spark_jobs.session import register_table, table_exists, table_name
from spark_jobs.splits import manifest_file
from spark_jobs.topics import label_value

DEPLOYMENT = "spark-warm-start"


def examples(spark, table: str):
    """(features, label) of a split table in stream order, streamed to the driver partition by partition."""
    rows = spark.table(table).orderBy("kafka_timestamp", "kafka_partition", "kafka_offset", "copy")
    for row in rows.select("features", "label").toLocalIterator():
        yield dict(row["features"]), label_value(row["label"])


def split_tables(spark, settings: Settings, splits: str, version: int) -> tuple[str, str]:
    names = [f"{splits}_v{version}_{s}" for s in ("train", "validation")]
    if not table_exists(spark, settings, names[0]):
        raise UserError(f"no table {table_name(settings, names[0])}: build it first with "
                        f"'mlstream spark splits --model {splits} --version {version}'")
    return register_table(spark, settings, names[0]), register_table(spark, settings, names[1])


def run(spark, settings: Settings, splits: str, splits_version: int, model: str | None = None,
        spec: str | None = None, deploy: bool = False, say: Callable[[str], None] = print) -> dict:
    model = model or settings.model
    spec = spec or model
    if spec not in models.SPECS:
        raise UserError(f"no model spec {spec!r}: choose --spec from {', '.join(models.SPECS)}")
    train, validation = split_tables(spark, settings, splits, splits_version)
    started = time.perf_counter()
    estimator, learned, features = models.build(spec), 0, set()
    for x, y in examples(spark, train):
        estimator.learn_one(x, y)
        features |= set(x)
        learned += 1
        if learned % 5000 == 0:
            say(f"spark warm-start: learned {learned} rows of {train}")
    hits = total = 0
    for x, y in examples(spark, validation):
        hits += estimator.predict_one(x) == y
        total += 1
    accuracy = hits / total if total else None
    train_seconds = time.perf_counter() - started

    registry = open_registry(settings)
    store = open_model_store(settings.model_store, settings.state_dir / "models", settings.s3_endpoint_url or None)
    version = registry.next_version(model)
    key, sha = save_snapshot(store, model, version, estimator)
    manifest_path = manifest_file(settings, splits, splits_version)
    data = {"spark_splits": json.loads(manifest_path.read_text()) if manifest_path.exists() else {},
            "train_table": train, "validation_table": validation}
    build = registry.add_build(Build(
        model=model, version=version, spec=spec, features=sorted(features),
        metrics={"validation": {"accuracy": accuracy, "examples": total}}, data=data, snapshot=store.location(key),
        snapshot_key=key, snapshot_sha256=sha, examples_learned=learned, train_seconds=round(train_seconds, 3),
        created_at_ms=time.time_ns() // 1_000_000))

    tracker = MetricsTracker(KafkaMetricsSink(settings), model, version, DEPLOYMENT)
    tracker.start_run({"spec": spec, "train_table": train, "validation_table": validation})
    tracker.track_metric("train_rows", learned)
    tracker.track_metric("validation_rows", total)
    if accuracy is not None:
        tracker.track_metric("validation_accuracy", accuracy)
    tracker.flush()

    lineage.report_job(settings, f"warm-start-{model}", inputs=[("table", train, False), ("table", validation, False)],
                       outputs=[("build", build.crn, model, int(version) if version.isdigit() else 0,
                                 {"spec": spec, "snapshot": build.snapshot, "trainRows": str(learned)})],
                       details=json.dumps({"validation_accuracy": accuracy}))
    say(f"spark warm-start: {spec} learned {learned} rows of {train}; validation accuracy "
        f"{'n/a' if accuracy is None else f'{accuracy:.3f}'} on {total} rows; registered build {build.ref} "
        f"(snapshot {build.snapshot})")
    result = {"build": build.ref, "build_crn": build.crn, "spec": spec, "train_rows": learned,
              "validation_rows": total, "validation_accuracy": accuracy, "snapshot": build.snapshot}
    if deploy:
        answer = ControlChannel(settings).request(deploy_command(settings.app_id, model, version), 60.0)
        if answer["result"] != "applied":
            raise UserError(f"{settings.app_id} refused {build.ref}: {answer['detail']}")
        say(f"spark warm-start: {settings.app_id} now serves {build.ref} and keeps learning from its labels")
        result["deployed_to"] = settings.app_id
    else:
        say(f"spark warm-start: deploy it with 'mlstream models deploy {build.ref}'")
    return result
