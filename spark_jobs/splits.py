"""Job ``splits``: reproducible train/validation/test tables of the records topic, labels joined, sampled.

Each partition's offsets are cut as ``mlstream models build`` cuts them (:func:`mlstream.registry.manifest.plan_splits`:
oldest share for training, then validation, then test), so a model never validates on records
older than those it learned from. The offset ranges of records and labels, the sampling and
a SHA-256 of each split's rows go into a manifest (``<state>/spark/splits/<model>/<version>.json``);
``--manifest`` rebuilds the same tables from it later, byte for byte the same rows, however
far the topics have moved on.

Tables ``<db>.<model>_v<version>_{train,validation,test}``; views ``<db>.<model>_{train,...}``
point at the newest version. Up- or down-sampling applies to the training split only and is
deterministic: rows are chosen by a seeded hash of the record id, not by ``rand()``, so the
choice does not depend on how Spark partitions the data.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from pathlib import Path
from typing import Any, Callable

from mlstream.errors import UserError
from mlstream.kafka.clients import spark_kafka_options
from mlstream.registry.manifest import DEFAULT_SPLITS, SPLITS, OffsetRange
from mlstream.registry.training import ranges_now
from mlstream.settings import Settings
from spark_jobs import lineage
from spark_jobs.avro import commented, decode, decoded_rows, offsets_json
from spark_jobs.session import table_name, write_table
from spark_jobs.topics import prepare


def manifest_file(settings: Settings, model: str, version: int) -> Path:
    return settings.state_dir / "spark" / "splits" / model / f"{version}.json"


def read_ranges(spark, settings: Settings, schemas, ranges: list[OffsetRange]):
    """The decoded frame of exactly ``ranges`` (one topic), or None when they are empty."""
    ranges = [r for r in ranges if r.end > r.start]
    if not ranges:
        return None
    frame = (spark.read.format("kafka").options(**spark_kafka_options(settings))
             .option("assign", json.dumps({schemas.topic: [r.partition for r in ranges]}))
             .option("startingOffsets", offsets_json(schemas.topic, {r.partition: r.start for r in ranges}))
             .option("endingOffsets", offsets_json(schemas.topic, {r.partition: r.end for r in ranges}))
             .option("failOnDataLoss", "true").load())
    return decode(frame, schemas)


def sampled(frame, sampling: dict[str, Any]):
    """Down-sample larger classes (``down``) or up-sample, repeating, smaller ones (``up``) to exact sizes.

    ``ratio`` is each smaller class's wanted size relative to the largest (default 1).
    """
    import math

    from pyspark.sql import Window
    from pyspark.sql import functions as F

    method = sampling.get("method", "none")
    if method == "none":
        return frame.withColumn("copy", F.lit(0))
    if method not in ("up", "down"):
        raise UserError(f"sampling method {method!r}: use none, up or down")
    seed, ratio = int(sampling.get("seed", 0)), float(sampling.get("ratio", 1.0))
    sizes = {row["label_text"]: row["count"] for row in frame.groupBy("label_text").count().collect()}
    if not sizes:
        return frame.withColumn("copy", F.lit(0))
    by_class = Window.partitionBy("label_text").orderBy("copy", "pick")
    if method == "down":
        keep = max(1, math.ceil(min(sizes.values()) / ratio))
        frame = frame.withColumn("copy", F.lit(0))
        want = F.lit(keep)
    else:
        target = max(1, math.floor(max(sizes.values()) * ratio))
        copies = max(math.ceil(target / n) for n in sizes.values())
        frame = frame.withColumn("copy", F.explode(F.sequence(F.lit(0), F.lit(copies - 1))))
        want = F.greatest(F.col("class_size"), F.lit(target))
        frame = frame.join(F.broadcast(frame.sparkSession.createDataFrame(
            list(sizes.items()), "label_text STRING, class_size LONG")), "label_text")
    return (frame.withColumn("pick", F.xxhash64("id", F.lit(seed), "copy"))
            .withColumn("rank", F.row_number().over(by_class))
            .where(F.col("rank") <= want).drop("pick", "rank", "class_size"))


def rows_sha256(spark, table: str) -> str:
    """A digest of a split's rows independent of file layout: sorted hashes of id, label, offset, copy."""
    from pyspark.sql import functions as F

    hashes = (spark.table(table).select(F.sha2(F.concat_ws("|", "id", "label_text", "kafka_partition",
                                                           "kafka_offset", "copy"), 256).alias("h"))
              .orderBy("h").collect())
    return hashlib.sha256("\n".join(r["h"] for r in hashes).encode()).hexdigest()


def run(spark, settings: Settings, model: str, version: int, fractions: dict[str, float] | None = None,
        sampling: dict[str, Any] | None = None, manifest: dict | None = None,
        say: Callable[[str], None] = print) -> dict:
    """Build the split tables; ``manifest`` (from an earlier run) rebuilds exactly its offset ranges."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    records, labels = prepare(settings, "records"), prepare(settings, "labels")
    if manifest:
        fractions, sampling = manifest["split_fractions"], manifest["sampling"]
        plan = {name: [OffsetRange(**r) for r in manifest["splits"][name]["records"]] for name in SPLITS}
        label_ranges = [OffsetRange(**r) for r in manifest["labels"]]
    else:
        fractions, sampling = dict(fractions or DEFAULT_SPLITS), dict(sampling or {"method": "none"})
        plan, label_ranges = ranges_now(settings, fractions)
    label_frame = read_ranges(spark, settings, labels, label_ranges)
    if label_frame is None:
        raise UserError(f"no labels in {labels.topic}: produce some first ('mlstream produce')")
    latest = Window.partitionBy("id").orderBy(F.col("kafka_partition").desc(), F.col("kafka_offset").desc())
    label_rows = (decoded_rows(label_frame).withColumn("n", F.row_number().over(latest)).where("n = 1")
                  .select("id", "label", F.expr("coalesce(CAST(label.member0 AS STRING), CAST(label.member1 AS "
                                                "STRING), CAST(label.member2 AS STRING), label.member3)")
                          .alias("label_text")))
    result: dict[str, Any] = {"model": model, "version": version, "created_at_ms": time.time_ns() // 1_000_000,
                              "records_topic": records.topic, "labels_topic": labels.topic,
                              "labels": [dataclasses.asdict(r) for r in label_ranges],
                              "split_fractions": fractions, "sampling": sampling, "splits": {}}
    for name in SPLITS:
        frame = read_ranges(spark, settings, records, plan[name])
        if frame is None:
            raise UserError(f"split {name} of {records.topic} is empty: produce more records first")
        joined = decoded_rows(frame).join(label_rows, "id")  # records without a label yet are left out
        if name == "train":
            joined = sampled(joined, sampling)
        else:
            joined = joined.withColumn("copy", F.lit(0))
        table = f"{model}_v{version}_{name}"
        full = write_table(spark, settings, commented(joined, records.reader_schema), table,
                           comment=f"{name} split {version} of {model} from {records.topic}")
        spark.sql(f"CREATE OR REPLACE VIEW {table_name(settings, f'{model}_{name}')} AS SELECT * FROM {full}")
        rows = spark.table(full).count()
        result["splits"][name] = {"records": [dataclasses.asdict(r) for r in plan[name]], "table": full,
                                  "view": table_name(settings, f"{model}_{name}"), "rows": rows,
                                  "rows_sha256": rows_sha256(spark, full)}
        say(f"spark splits: {name:10} {rows:6} rows in {full} from "
            + ", ".join(f"p{r.partition}[{r.start},{r.end})" for r in plan[name]))
    path = manifest_file(settings, model, version)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2))
    lineage.report_job(settings, f"splits-{model}-v{version}", inputs=[lineage.topic_input(settings, records.topic),
                                                            lineage.topic_input(settings, labels.topic)],
                       # No column lineage from one topic: a split's columns come from the records and the labels.
                       outputs=[lineage.catalog_output(spark, settings, f"{model}_v{version}_{n}") for n in SPLITS]
                       + [lineage.catalog_output(spark, settings, f"{model}_{n}", view=True) for n in SPLITS],
                       details=json.dumps({"manifest": str(path), "sampling": sampling, "split_fractions": fractions}))
    say(f"spark splits: manifest {path}")
    return result
