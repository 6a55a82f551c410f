"""Job ``score``: a Structured Streaming query that scores the records topic, with metrics like the Faust app's.

Each micro-batch (``foreachBatch``) is decoded in Spark; the good rows are scored on the
driver by the same model the stream app serves (per the model registry, read once at
start: this job does not learn), and the batch's figures go through the metrics
API as one aggregate row per batch of the ``spark-score`` deployment: records scored,
quarantined, positive share, mean score, and accuracy on the records whose label is already
on the labels topic. ``mlstream metrics read`` then shows them beside the app's rows.
Labels are looked up by a batch read of the labels topic per micro-batch: cheap at the
demo's sizes, linear in the labels topic's size; for long streams query
``predictions_with_labels`` (job ``predictions``) instead.
Values that do not decode are appended to ``<db>.score_quarantine`` with the reason (a
batch replayed after a crash may append its rows again: they name their topic, partition
and offset, so duplicates are visible).

    mlstream spark score                     # until Ctrl-C; --available-now stops when caught up
"""

from __future__ import annotations

import time
from typing import Callable

from mlstream.errors import UserError
from mlstream.metrics import KafkaMetricsSink, MetricsTracker
from mlstream.registry.metadata_log import open_registry
from mlstream.registry.snapshots import load_snapshot
from mlstream.scoring.model_store import open_model_store
from mlstream.scoring.online_model import OnlineModel
from mlstream.settings import Settings
from spark_jobs import lineage
from spark_jobs.avro import commented, decode, decoded_rows, kafka_options, quarantined
from spark_jobs.session import write_table
from spark_jobs.topics import label_value, prepare, read_batch

DEPLOYMENT = "spark-score"
QUARANTINE = "score_quarantine"


def load_model(settings: Settings) -> OnlineModel:
    """What the stream app serves: the registry's deployment for ``MLSTREAM_APP_ID`` (its newest checkpoint,
    else the build's snapshot), or else the checkpoint of ``MLSTREAM_MODEL`` / ``MLSTREAM_MODEL_VERSION``."""
    store = open_model_store(settings.model_store, settings.state_dir / "models", settings.s3_endpoint_url or None)
    deployment = open_registry(settings).serving(settings.app_id)
    name, version = ((deployment.model, deployment.build_version) if deployment
                     else (settings.model, settings.model_version))
    checkpoint = store.load(name, version)
    if checkpoint is not None:
        return OnlineModel(checkpoint["estimator"], name, version, checkpoint["n_learned"])
    if deployment is not None:
        build = open_registry(settings).build(f"{name}/{version}")
        return OnlineModel(load_snapshot(store, build.snapshot_key, build.snapshot_sha256), name, version)
    raise UserError(f"{settings.app_id} has no deployment in the model registry and there is no checkpoint of "
                    f"{name} v{version}: run the stream app, or 'mlstream spark warm-start --deploy', first")


def batch_metrics(scored: list[tuple[object, object, float | None]], quarantined: int) -> dict:
    """Figures of one batch from (predicted, label or None, score or None) triples.

    >>> batch_metrics([(True, True, 0.9), (False, True, 0.6), (True, None, None)], quarantined=1)
    {'records_scored': 3, 'quarantined': 1, 'positive_share': 0.6666666666666666, 'mean_score': 0.75, 'labelled': 2, 'accuracy': 0.5}
    """
    out: dict = {"records_scored": len(scored), "quarantined": quarantined}
    if scored:
        out["positive_share"] = sum(p is True or p == 1 for p, _, _ in scored) / len(scored)
    scores = [s for _, _, s in scored if s is not None]
    if scores:
        out["mean_score"] = sum(scores) / len(scores)
    labelled = [(p, y) for p, y, _ in scored if y is not None]
    out["labelled"] = len(labelled)
    if labelled:
        out["accuracy"] = sum(p == y for p, y in labelled) / len(labelled)
    return out


class BatchScorer:
    """The ``foreachBatch`` function: decode, score, look labels up, track one aggregate row."""

    def __init__(self, spark, settings: Settings, model: OnlineModel, tracker, say: Callable[[str], None]):
        self.spark, self.settings, self.model, self.tracker, self.say = spark, settings, model, tracker, say
        self.labels = prepare(settings, "labels")
        self.totals = {"batches": 0, "records_scored": 0, "quarantined": 0}

    def __call__(self, frame, batch_id: int) -> None:
        from pyspark.sql import functions as F

        started = int(time.time() * 1000)
        frame = frame.persist()
        try:
            rows = decoded_rows(frame).select("id", "features").collect()
            bad = quarantined(frame)
            n_bad = bad.count()
            if n_bad:
                write_table(self.spark, self.settings, commented(bad), QUARANTINE, mode="append")
        finally:
            frame.unpersist()
        labels = {}
        if rows:
            ids = [r["id"] for r in rows]
            labels = {r["id"]: label_value(r["label"]) for r in decoded_rows(
                read_batch(self.spark, self.settings, self.labels)).where(F.col("id").isin(ids))
                .select("id", "label").collect()}
        scored = []
        for row in rows:
            prediction = self.model.predict(dict(row["features"]))
            scored.append((prediction.label, labels.get(row["id"]), prediction.score))
        metrics = batch_metrics(scored, n_bad)
        self.tracker.track_aggregate_metrics(metrics, started, int(time.time() * 1000))
        self.tracker.flush()
        self.totals["batches"] += 1
        self.totals["records_scored"] += metrics["records_scored"]
        self.totals["quarantined"] += n_bad
        self.say(f"spark score: batch {batch_id}: {metrics}")


def run(spark, settings: Settings, trigger_seconds: float = 5.0, available_now: bool = False,
        say: Callable[[str], None] = print, query_name: str | None = None) -> dict:
    records = prepare(settings, "records")
    model = load_model(settings)
    tracker = MetricsTracker(KafkaMetricsSink(settings), model.name, model.version, DEPLOYMENT)
    scorer = BatchScorer(spark, settings, model, tracker, say)
    source = (spark.readStream.format("kafka").options(**kafka_options(settings, records.topic))
              .option("startingOffsets", "earliest").load())
    writer = decode(source, records).writeStream.foreachBatch(scorer).option(
        "checkpointLocation", str(settings.state_dir / "spark" / "checkpoints" / f"score-{settings.model}"))
    writer = writer.trigger(availableNow=True) if available_now else writer.trigger(
        processingTime=f"{trigger_seconds} seconds")
    lineage.report_job(settings, "score", inputs=[lineage.topic_input(settings, records.topic),
                                                  lineage.topic_input(settings, settings.topics.labels)],
                       outputs=[lineage.topic_input(settings, settings.topics.metrics),
                                lineage.table_output(settings, QUARANTINE)])
    say(f"spark score: scoring {records.topic} with {model.name} v{model.version} ({model.n_learned} labels "
        f"learned); metrics as deployment {tracker.model_deployment_crn}")
    query = writer.queryName(query_name or f"score-{settings.topics.prefix}{settings.model}").start()
    try:
        query.awaitTermination()
    finally:
        query.stop()
    say(f"spark score: {scorer.totals['records_scored']} records scored in {scorer.totals['batches']} batches, "
        f"{scorer.totals['quarantined']} quarantined")
    return dict(scorer.totals, model_deployment_crn=tracker.model_deployment_crn)
