"""The SparkSession every job uses, and where jobs keep their tables.

The Kafka source and ``from_avro`` live in two connector jars that are not part of
pyspark; ``spark.jars.packages`` makes Spark resolve them (and their dependencies) from
Maven Central through Ivy on the first start, into ``spark.jars.ivy`` (default
``~/.ivy2.5.2``; ``MLSTREAM_SPARK_IVY`` moves it). Their version must be the installed
Spark's: both connectors are built per Spark release.

Without ``MLSTREAM_METASTORE_URL``, tables live in Spark's built-in catalog
(``spark.sql.catalogImplementation=in-memory``) with their files under
``<state dir>/spark/warehouse/<database>/<table>``. An in-memory catalog forgets table
definitions when the session ends, so every job registers the tables it uses
(:func:`register_table`: a table over its folder) and any other session (``mlstream spark sql``,
a notebook) sees the same files. With it, the session is on the shared Hive metastore
(:mod:`spark_jobs.catalog`): the same calls create managed tables there, once, in the warehouse
(``MLSTREAM_WAREHOUSE``, a folder or ``s3a://``), partitioned and with column comments, and every
engine on that metastore (the SQL endpoint among them) sees them.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from mlstream.settings import Settings
from spark_jobs import catalog

LOG4J_CONFIG = Path(__file__).with_name("log4j2.properties")

#: Spark's own Kafka and Avro connectors, Scala 2.13 builds like pyspark 4's jars.
CONNECTORS = ("org.apache.spark:spark-sql-kafka-0-10_2.13", "org.apache.spark:spark-avro_2.13")


def packages() -> str:
    import pyspark

    return ",".join(f"{name}:{pyspark.__version__}" for name in CONNECTORS)


def spark_conf(settings: Settings, master: str = "local[2]", driver_memory: str = "1g") -> dict[str, str]:
    """Settings for a local session: 2 cores, a modest driver, few shuffle partitions (small data)."""
    conf = {
        "spark.master": master,
        "spark.driver.memory": driver_memory,
        "spark.jars.packages": packages(),
        "spark.sql.shuffle.partitions": "4",
        "spark.sql.catalogImplementation": "in-memory",
        "spark.sql.warehouse.dir": catalog.warehouse(settings),
        "spark.ui.enabled": "false",
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.streaming.forceDeleteTempCheckpointLocation": "true",
        # Python workers run the same interpreter as the driver (the project's venv).
        "spark.pyspark.python": sys.executable,
        "spark.pyspark.driver.python": sys.executable,
        "spark.driver.extraJavaOptions": f"-Dlog4j2.configurationFile={LOG4J_CONFIG}",
    }
    if os.environ.get("MLSTREAM_SPARK_IVY"):
        conf["spark.jars.ivy"] = os.environ["MLSTREAM_SPARK_IVY"]
    if settings.metastore_url:
        conf |= catalog.metastore_conf(settings)
        # On the driver's own class path, not spark.jars: JDBC's DriverManager sees only the JVM's class loader.
        conf["spark.driver.extraClassPath"] = ":".join(str(j) for j in catalog.catalog_jars(settings))
    return conf


def spark_session(settings: Settings, app_name: str, master: str = "local[2]", driver_memory: str = "1g",
                  log_level: str = "WARN"):
    """Start (or reuse) the session; the first start downloads the connector jars."""
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName(app_name)
    for key, value in spark_conf(settings, master, driver_memory).items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel(log_level)
    return spark


def database(settings: Settings) -> str:
    """The Spark database of these settings' topics: the topic prefix as an identifier (``mlstream``)."""
    return re.sub(r"\W", "_", settings.topics.prefix.strip(".")).lower() or "mlstream"


def table_path(settings: Settings, table: str) -> Path:
    """Where a table of the in-memory catalog keeps its files (a metastore's tables: :func:`table_location`)."""
    return settings.state_dir / "spark" / "warehouse" / database(settings) / table


def table_name(settings: Settings, table: str) -> str:
    return f"{database(settings)}.{table}"


def table_location(spark, settings: Settings, table: str) -> str:
    """The folder or ``s3a://`` URI of a registered table's files, as its catalog has it."""
    if not settings.metastore_url:
        return str(table_path(settings, table))
    rows = spark.sql(f"DESCRIBE TABLE EXTENDED {table_name(settings, table)}").collect()
    return next(r["data_type"] for r in rows if r["col_name"] == "Location")


def register_table(spark, settings: Settings, table: str, schema=None, partition_by: tuple[str, ...] = (),
                   comment: str = "") -> str:
    """Make ``<database>.<table>`` a Parquet table; returns its full name.

    In the in-memory catalog, a table over its folder (:func:`table_path`). On a metastore, a
    managed table in the warehouse, created once, ``partition_by`` its partition columns and
    each field's ``comment`` metadata its column's comment.

    ``schema`` (a StructType) lets the table exist before any data does (a stream's first
    batch); without it the folder must hold data, and Spark reads the schema from it (the
    in-memory catalog only). Refreshed, so this session sees files written since it last looked.
    """
    name = table_name(settings, table)
    if not spark.catalog.databaseExists(database(settings)):
        spark.sql(f"CREATE DATABASE IF NOT EXISTS {database(settings)}")
    if not spark.catalog.tableExists(name):
        if settings.metastore_url:
            if schema is None:
                raise ValueError(f"{name}: a managed table needs its schema")
            writer = spark.createDataFrame([], schema).write.format("parquet").partitionBy(*partition_by)
            writer.option("comment", comment).saveAsTable(name) if comment else writer.saveAsTable(name)
        else:
            table_path(settings, table).mkdir(parents=True, exist_ok=True)
            spark.catalog.createTable(name, path=str(table_path(settings, table)), source="parquet", schema=schema)
    spark.catalog.refreshTable(name)
    return name


def write_table(spark, settings: Settings, frame, table: str, mode: str = "overwrite",
                partition_by: tuple[str, ...] = (), comment: str = "") -> str:
    """Write a batch ``frame`` as ``<database>.<table>`` (``mode`` overwrite or append); returns its full name.

    On a metastore, a managed table (replaced by an overwrite, with the frame's column comments);
    in the in-memory catalog, the table's folder. ``partition_by`` partitions the managed table
    only: the in-memory catalog's folder tables keep the flat layout their readers expect.
    """
    if not settings.metastore_url:
        frame.write.mode(mode).parquet(str(table_path(settings, table)))
        return register_table(spark, settings, table)
    name = table_name(settings, table)
    spark.sql(f"CREATE DATABASE IF NOT EXISTS {database(settings)}")
    writer = frame.write.mode(mode).format("parquet").partitionBy(*partition_by)
    (writer.option("comment", comment) if comment else writer).saveAsTable(name)
    spark.catalog.refreshTable(name)
    return name


def table_exists(spark, settings: Settings, table: str) -> bool:
    """Whether the table has been written: its folder holds files, or the metastore has it."""
    if settings.metastore_url:
        return spark.catalog.tableExists(table_name(settings, table))
    return table_path(settings, table).exists()
