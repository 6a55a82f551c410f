"""Job ``predictions``: the predictions and labels topics streamed into Parquet tables, queryable as they grow.

One Structured Streaming query per topic reads it with Spark's Kafka source, decodes each
value (quarantined ones keep their bytes and reason) and appends to
``<db>.stream_predictions`` / ``<db>.stream_labels`` through Spark's file sink: exactly once,
with the offsets in a checkpoint folder, so a restarted job continues where it stopped.
Views over them are what users query:

- ``<db>.predictions_live``, ``<db>.labels_live``: the decoded rows;
- ``<db>.predictions_with_labels``: each prediction with its label, once the label is there;
- ``<db>.stream_quarantine``: what did not decode, from both topics, with the reason.

Any session sees a batch as soon as the file sink commits it (``REFRESH TABLE`` first in a
long-lived session; ``mlstream spark sql`` does)::

    mlstream spark predictions &                       # runs until Ctrl-C
    mlstream spark sql "SELECT model_version, count(*) FROM mlstream.predictions_live GROUP BY 1"
"""

from __future__ import annotations

from typing import Callable

from mlstream.settings import Settings
from spark_jobs import lineage
from spark_jobs.avro import KAFKA_COLUMNS, commented, decode, kafka_options
from spark_jobs.session import register_table, table_location, table_name
from spark_jobs.topics import prepare

STREAMS = {"predictions": "stream_predictions", "labels": "stream_labels"}


def stream_rows(frame):
    """Decoded fields (null when quarantined), the Kafka coordinates, and for quarantined rows bytes + reason."""
    from pyspark.sql import functions as F

    bad = F.col("quarantine_kind").isNotNull()
    return frame.select("decoded.*", *[F.col(c).alias(f"kafka_{c}") for c in KAFKA_COLUMNS], "schema_id",
                        "quarantine_kind", "quarantine_reason", F.when(bad, F.col("value")).alias("raw_value"),
                        F.to_date("timestamp").alias("kafka_date"))


def union_text(column: str) -> str:
    """SQL for the value of a ``[boolean, long, double, string]`` union struct as a string."""
    return "coalesce(" + ", ".join(f"CAST({column}.member{i} AS STRING)" for i in range(4)) + ")"


def checkpoint_dir(settings: Settings, table: str) -> str:
    return str(settings.state_dir / "spark" / "checkpoints" / table_name(settings, table))


def register_views(spark, settings: Settings) -> list[str]:
    """The views over the stream tables (re-created each time: an in-memory catalog forgets them)."""
    preds, labels = (table_name(settings, t) for t in STREAMS.values())
    views = {
        "predictions_live": f"SELECT * EXCEPT (quarantine_kind, quarantine_reason, raw_value) FROM {preds} "
                            f"WHERE quarantine_kind IS NULL",
        "labels_live": f"SELECT * EXCEPT (quarantine_kind, quarantine_reason, raw_value) FROM {labels} "
                       f"WHERE quarantine_kind IS NULL",
        # Labels and predicted labels are Avro unions (structs member0..3 in Spark): compared as strings.
        "predictions_with_labels": (
            f"SELECT *, predicted = label AS correct FROM (SELECT p.*, {union_text('p.predicted_label')} AS predicted, "
            f"{union_text('l.label')} AS label, l.event_time AS labelled_at "
            f"FROM {table_name(settings, 'predictions_live')} p "
            f"LEFT JOIN {table_name(settings, 'labels_live')} l ON p.record_id = l.id)"),
        "stream_quarantine": " UNION ALL ".join(
            f"SELECT kafka_topic AS topic, kafka_partition AS partition, kafka_offset AS offset, "
            f"kafka_timestamp AS timestamp, raw_value AS value, schema_id, quarantine_kind, quarantine_reason "
            f"FROM {t} WHERE quarantine_kind IS NOT NULL" for t in (preds, labels)),
    }
    for view, query in views.items():
        spark.sql(f"CREATE OR REPLACE VIEW {table_name(settings, view)} AS {query}")
    return [table_name(settings, v) for v in views]


def start(spark, settings: Settings, trigger_seconds: float = 5.0, available_now: bool = False,
          say: Callable[[str], None] = print) -> list:
    """Start one streaming query per topic; returns the StreamingQuery objects."""
    prepared = {kind: prepare(settings, kind) for kind in STREAMS}  # clear errors before any query starts
    queries = []
    for kind, table in STREAMS.items():
        schemas = prepared[kind]
        source = (spark.readStream.format("kafka").options(**kafka_options(settings, schemas.topic))
                  .option("startingOffsets", "earliest").load())
        rows = commented(stream_rows(decode(source, schemas)), schemas.reader_schema)
        # On a metastore, a managed table partitioned by day: a day's queries read that day's folder alone.
        partitioned = ("kafka_date",) if settings.metastore_url else ()
        register_table(spark, settings, table, schema=rows.schema, partition_by=partitioned,
                       comment=f"{schemas.topic} as it streams in, exactly once (Spark's file sink)")
        writer = (rows.writeStream.format("parquet").partitionBy(*partitioned)
                  .option("path", table_location(spark, settings, table))
                  .option("checkpointLocation", checkpoint_dir(settings, table))
                  .queryName(f"{table_name(settings, table)}"))
        writer = writer.trigger(availableNow=True) if available_now else writer.trigger(
            processingTime=f"{trigger_seconds} seconds")
        queries.append(writer.start())
        say(f"spark predictions: streaming {schemas.topic} into {table_name(settings, table)}")
    views = register_views(spark, settings)
    lineage.report_job(settings, "predictions",
                       inputs=[lineage.topic_input(settings, prepared[k].topic) for k in STREAMS],
                       outputs=[lineage.catalog_output(spark, settings, t, source_topic=prepared[k].topic)
                                for k, t in STREAMS.items()]
                       + [lineage.catalog_output(spark, settings, v.split(".", 1)[1], view=True) for v in views])
    return queries


def counts(spark, settings: Settings) -> dict[str, int]:
    """Rows now in the live views and the quarantine, as a fresh reader sees them."""
    for table in STREAMS.values():
        spark.catalog.refreshTable(table_name(settings, table))
    return {view: spark.table(table_name(settings, view)).count()
            for view in ("predictions_live", "labels_live", "stream_quarantine")}


def run(spark, settings: Settings, trigger_seconds: float = 5.0, available_now: bool = False,
        say: Callable[[str], None] = print) -> dict:
    """Stream until Ctrl-C (or, with ``available_now``, until what the topics hold now is in the tables)."""
    queries = start(spark, settings, trigger_seconds, available_now, say)
    try:
        while any(q.isActive for q in queries):
            for q in queries:
                q.awaitTermination(trigger_seconds * 2)
                if q.exception():
                    raise RuntimeError(f"streaming query {q.name} failed: {q.exception()}")
            if any(q.isActive for q in queries):
                say(f"spark predictions: {counts(spark, settings)}")
    finally:
        for q in queries:
            q.stop()
    result = counts(spark, settings)
    say(f"spark predictions: {result['predictions_live']} predictions, {result['labels_live']} labels, "
        f"{result['stream_quarantine']} quarantined; query them with 'mlstream spark sql'")
    return result
