"""The SparkSession every job uses, and where jobs keep their tables.

The Kafka source and ``from_avro`` live in two connector jars that are not part of
pyspark; ``spark.jars.packages`` makes Spark resolve them (and their dependencies) from
Maven Central through Ivy on the first start, into ``spark.jars.ivy`` (default
``~/.ivy2.5.2``; ``MLSTREAM_SPARK_IVY`` moves it). Their version must be the installed
Spark's: both connectors are built per Spark release.

Tables live in Spark's built-in catalog (``spark.sql.catalogImplementation=in-memory``) with
their files under ``<state dir>/spark/warehouse/<database>/<table>``. An in-memory catalog
forgets table definitions when the session ends, so every job registers the tables it uses
(:func:`register_table`, ``CREATE TABLE IF NOT EXISTS ... LOCATION``) and any other session
(``mlstream spark sql``, a notebook) sees the same files. With a Hive metastore
(``MLSTREAM_SPARK_CATALOG=hive`` plus ``spark.hadoop.hive.metastore.uris``, see the README) the
same statements register them there once for every engine.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from mlstream.settings import Settings

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
        "spark.sql.catalogImplementation": os.environ.get("MLSTREAM_SPARK_CATALOG", "in-memory"),
        "spark.sql.warehouse.dir": str(settings.state_dir / "spark" / "warehouse"),
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
    return settings.state_dir / "spark" / "warehouse" / database(settings) / table


def table_name(settings: Settings, table: str) -> str:
    return f"{database(settings)}.{table}"


def register_table(spark, settings: Settings, table: str, schema=None) -> str:
    """Make ``<database>.<table>`` a Parquet table over its folder; returns its full name.

    ``schema`` (a StructType) lets the table exist before any data does (a stream's first
    batch); without it the folder must hold data, and Spark reads the schema from it.
    Refreshed, so this session sees files written since it last looked.
    """
    name = table_name(settings, table)
    if not spark.catalog.databaseExists(database(settings)):
        spark.sql(f"CREATE DATABASE IF NOT EXISTS {database(settings)}")
    if not spark.catalog.tableExists(name):
        table_path(settings, table).mkdir(parents=True, exist_ok=True)
        spark.catalog.createTable(name, path=str(table_path(settings, table)), source="parquet", schema=schema)
    spark.catalog.refreshTable(name)
    return name
