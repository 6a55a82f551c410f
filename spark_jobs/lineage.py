"""Atlas lineage of Spark jobs: topics, tables, views and S3 paths in, a ``spark_process``, datasets out.

The dataset entities come from :mod:`mlstream.lineage.entities` (``kafka_topic``,
``spark_table`` with tableType VIEW for views, ``aws_s3_v2_*`` for ``s3a://`` paths), so they
merge with what the stream app, the feed and builds report for the same names. The process
is Atlas's ``spark_process`` (1100-spark_model.json), one per job and database:
``spark://<database>/<job>@<namespace>``, so each run updates it rather than adding another.

    >>> notification = job_notification("splits", [("topic", "mlstream.records")],
    ...     [("table", "mlstream.churn_train", False), ("s3", "s3a://lake/churn/train/")],
    ...     namespace="primary", database="mlstream", bootstrap_servers="localhost:9092", user="me")
    >>> [(e["typeName"], e["attributes"]["qualifiedName"]) for e in notification["entities"]["entities"]][-1]
    ('spark_process', 'spark://mlstream/splits@primary')
    >>> sorted({e["typeName"] for e in notification["entities"]["entities"]})
    ['aws_s3_v2_bucket', 'aws_s3_v2_directory', 'kafka_topic', 'spark_process', 'spark_table']
"""

from __future__ import annotations

import getpass
import sys
import time
from collections.abc import Iterator, Sequence
from typing import Any

from mlstream.lineage import entities as e
from mlstream.lineage.emitter import LineageDeliveryError
from mlstream.lineage.hook import entity_create_v2
from mlstream.lineage.spool import lineage_emitter
from mlstream.settings import Settings
from spark_jobs.session import database, table_name

SPARK_PROCESS = "spark_process"

#: ("topic", name) | ("table", db.table, is_view) | ("s3", s3a://path)
#: | ("build", build crn, model name, version, metadata): an ml_model_build
#: | ("hive", db.table, columns, partition keys, location, view text, source topic): a metastore table
Dataset = tuple


def topic_input(settings: Settings, topic: str) -> Dataset:
    return ("topic", topic)


def table_output(settings: Settings, table: str, view: bool = False) -> Dataset:
    return ("table", table_name(settings, table), view)


def s3_path(path: str) -> Dataset:
    return ("s3", path)


def metastore_output(spark, settings: Settings, table: str, source_topic: str = "") -> Dataset:
    """A table or view of the shared metastore as it is now: its columns, partition keys, location, view text.

    ``source_topic``: the topic whose fields its columns are (column lineage, field to column of the same name).
    """
    name = table_name(settings, table)
    columns = tuple((c.name, c.dataType, c.description or "") for c in spark.catalog.listColumns(name))
    keys = tuple(c.name for c in spark.catalog.listColumns(name) if c.isPartition)
    described = {r["col_name"]: r["data_type"] for r in spark.sql(f"DESCRIBE TABLE EXTENDED {name}").collect()}
    view_text = described.get("View Text", "") if described.get("Type") == "VIEW" else ""
    return ("hive", name, columns, keys, "" if view_text else described.get("Location", ""), view_text, source_topic)


def catalog_output(spark, settings: Settings, table: str, view: bool = False, source_topic: str = "") -> Dataset:
    """The table's dataset: a ``hive_table`` on the shared metastore, else a ``spark_table``."""
    if settings.metastore_url:
        return metastore_output(spark, settings, table, source_topic)
    return table_output(settings, table, view)


def metastore_entities(item: Dataset, guids: Iterator[str], *, namespace: str, bootstrap_servers: str,
                       user: str) -> list[dict]:
    """A metastore table's entities, the table first; with an S3 location, the path and a ``hive_process``
    from the table to it; with a source topic, a ``hive_process`` from the topic to the table holding each
    copied field's ``hive_column_lineage``."""
    _, name, columns, keys, location, view_text, source_topic = item
    made = e.metastore_table(name, namespace, guids=guids, columns=columns, partition_keys=keys, location=location,
                             view_text=view_text)
    table = made[0]
    now = time.time_ns() // 1_000_000
    qualified = table["attributes"]["qualifiedName"]
    if location.startswith(("s3://", "s3a://")):
        path = e.s3_path_entities(location, namespace, guids=guids)
        made += path
        made.append(e.hive_process(f"{qualified}:location", [table], [path[-1]], guid=next(guids), user=user,
                                   operation="CREATETABLE", query_text=f"{name} LOCATION '{location}'",
                                   time_ms=now))
    if source_topic:
        # A reference: the job's own inputs create the topic in the same message.
        topic_name = e.kafka_topic_qualified_name(source_topic, namespace)
        topic = e.object_id(e.KAFKA_TOPIC, topic_name)
        process = e.hive_process(f"{qualified}:from:{topic_name}", [topic], [table],
                                 guid=next(guids), user=user, operation="QUERY",
                                 query_text=f"INSERT INTO {name} SELECT ... FROM kafka topic {source_topic}",
                                 time_ms=now)
        made.append(process)
        fields = {c[0] for c in columns if not c[0].startswith(("kafka_", "quarantine_")) and c[0] not in
                  ("schema_id", "raw_value")}
        made += [e.hive_column_lineage(process, [topic], column, f"value.{column['attributes']['name']}",
                                       guid=next(guids))
                 for column in made if column["typeName"] == e.HIVE_COLUMN and column["attributes"]["name"] in fields]
    return made


def dataset_entities(datasets: Sequence[Dataset], guids: Iterator[str], *, namespace: str,
                     bootstrap_servers: str, user: str = "mlstream") -> tuple[list[dict], list[dict]]:
    """(entities to create, the dataset each ``datasets`` item stands for, in order)."""
    created: list[dict] = []
    ends: list[dict] = []
    for item in datasets:
        if item[0] == "topic":
            entity = e.kafka_topic(item[1], namespace, bootstrap_servers=bootstrap_servers, guid=next(guids))
            created.append(entity)
        elif item[0] == "table":
            entity = e.spark_table(item[1], namespace, guid=next(guids), view=item[2])
            created.append(entity)
        elif item[0] == "hive":
            made = metastore_entities(item, guids, namespace=namespace, bootstrap_servers=bootstrap_servers,
                                      user=user)
            created += made
            entity = made[0]
        elif item[0] == "s3":
            path = e.s3_path_entities(item[1], namespace, guids=guids)
            created += path
            entity = path[-1]
        elif item[0] == "build":
            entity = e.ml_model_build(item[1], item[2], item[3], guid=next(guids), metadata=item[4],
                                      create_time_ms=time.time_ns() // 1_000_000)
            created.append(entity)
        else:
            raise ValueError(f"unknown dataset kind {item[0]!r}")
        ends.append(entity)
    return created, ends


def spark_process(job: str, database: str, inputs: Sequence[dict], outputs: Sequence[dict], *, namespace: str,
                  guid: str, user: str, details: str | None = None) -> dict:
    attributes: dict[str, Any] = {"qualifiedName": f"spark://{database}/{job}@{namespace}",
                                  "name": f"spark {job} ({database})", "currUser": user,
                                  "executionId": time.time_ns() // 1_000_000}
    if details:
        attributes["details"] = details
    return {"typeName": SPARK_PROCESS, "guid": guid, "attributes": attributes, "relationshipAttributes": {
        "inputs": [e.reference_to(d, e.PROCESS_INPUTS) for d in inputs],
        "outputs": [e.reference_to(d, e.PROCESS_OUTPUTS) for d in outputs]}}


def job_notification(job: str, inputs: Sequence[Dataset], outputs: Sequence[Dataset], *, namespace: str,
                     database: str, bootstrap_servers: str, user: str, extra: Sequence[dict] = (),
                     details: str | None = None) -> dict:
    """ENTITY_CREATE_V2 of the job's datasets and its ``spark_process``; ``extra`` entities ride along."""
    guids = e.negative_guids()
    created_in, ins = dataset_entities(inputs, guids, namespace=namespace, bootstrap_servers=bootstrap_servers,
                                       user=user)
    created_out, outs = dataset_entities(outputs, guids, namespace=namespace, bootstrap_servers=bootstrap_servers,
                                         user=user)
    process = spark_process(job, database, ins, outs, namespace=namespace, guid=next(guids), user=user,
                            details=details)
    return entity_create_v2([*created_in, *created_out, *extra, process], user=user)


def user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "mlstream"


def report_job(settings: Settings, job: str, inputs: Sequence[Dataset], outputs: Sequence[Dataset],
               extra: Sequence[dict] = (), details: str | None = None) -> dict:
    """Send the job's lineage (Atlas REST or the hook topic, spooled when undeliverable); returns it."""
    notification = job_notification(job, inputs, outputs, namespace=settings.atlas_namespace,
                                    database=database(settings), bootstrap_servers=settings.bootstrap_servers,
                                    user=user(), extra=extra, details=details)
    emitter = lineage_emitter(settings, key=f"spark-{database(settings)}-{job}")
    emitter.emit(notification)
    try:
        emitter.flush()
    except LineageDeliveryError as err:
        print(f"spark {job}: lineage spooled, to be sent on the next run ({err})", file=sys.stderr)
    return notification
