"""The shared catalog's Spark settings: a Hive metastore in PostgreSQL, a warehouse on a folder or ``s3a://``.

Every engine that takes these settings sees the same databases, tables and views: the Spark
jobs' sessions (:func:`spark_jobs.session.spark_conf` adds them when ``MLSTREAM_METASTORE_URL``
is set) and the SQL endpoint, Spark's Thrift server, which ``infra/catalog/catalog.sh`` starts
with the same settings (``python -m spark_jobs.catalog conf`` prints them for it). Each embeds
Spark's Hive 2.3 metastore client, which talks to the metastore's database over JDBC: no
metastore server of its own to run. The metastore's tables are created as the clients first need
them (DataNucleus creates each class's table; the schema version check is off because nothing
stamps one), without foreign keys: adding one to a table another transaction has written to waits
for that transaction, and a client creating a table's privileges table (``TBL_PRIVS``, referencing
``TBLS``) while its own transaction inserts the table waited for itself, for ever.

The s3a filesystem (hadoop-aws and the AWS SDK bundle) and the PostgreSQL driver are not in
pyspark: ``infra/catalog/pom.xml`` fetches them into ``<cache dir>/lib/catalog-<hadoop version>``,
the version being the Hadoop that pyspark ships. S3 credentials are not in these settings (they
would be in Spark's event log): s3a takes them from ``AWS_ACCESS_KEY_ID`` and
``AWS_SECRET_ACCESS_KEY`` as boto3 does.

>>> from mlstream.settings import Settings
>>> settings = Settings.from_env({"MLSTREAM_METASTORE_URL": "postgresql://metastore@127.0.0.1:5432/metastore",
...                               "MLSTREAM_WAREHOUSE": "s3a://warehouse/",
...                               "MLSTREAM_S3_ENDPOINT_URL": "http://127.0.0.1:58180"})
>>> conf = metastore_conf(settings)
>>> conf["spark.hadoop.javax.jdo.option.ConnectionURL"], conf["spark.hadoop.javax.jdo.option.ConnectionUserName"]
('jdbc:postgresql://127.0.0.1:5432/metastore', 'metastore')
>>> conf["spark.sql.warehouse.dir"], conf["spark.hadoop.fs.s3a.endpoint"]
('s3a://warehouse/', 'http://127.0.0.1:58180')
"""

from __future__ import annotations

import sys
from pathlib import Path
from urllib.parse import urlsplit

from mlstream.errors import UserError
from mlstream.settings import Settings


def hadoop_version() -> str:
    """The Hadoop that pyspark ships (its hadoop-client-api jar's version)."""
    import pyspark

    jars = sorted((Path(pyspark.__file__).parent / "jars").glob("hadoop-client-api-*.jar"))
    if not jars:
        raise UserError("pyspark ships no hadoop-client-api jar: cannot tell which hadoop-aws it needs")
    return jars[-1].name.removeprefix("hadoop-client-api-").removesuffix(".jar")


def catalog_jars(settings: Settings) -> list[Path]:
    """The s3a and PostgreSQL jars; a clear error when ``infra/catalog/catalog.sh`` has not fetched them."""
    folder = settings.cache_dir / "lib" / f"catalog-{hadoop_version()}"
    jars = sorted(folder.glob("*.jar"))
    if not any(j.name.startswith("hadoop-aws-") for j in jars):
        raise UserError(f"the catalog's jars (hadoop-aws, the AWS SDK, the PostgreSQL driver) are not in {folder}: "
                        f"run 'mlstream up --with catalog' (or bash infra/catalog/catalog.sh) once to fetch them")
    return jars


def jdbc(url: str) -> tuple[str, str]:
    """(JDBC URL, user) of a ``postgresql://user@host:port/db`` URL.

    >>> jdbc("postgresql://metastore@127.0.0.1:15332/metastore")
    ('jdbc:postgresql://127.0.0.1:15332/metastore', 'metastore')
    """
    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres") or not parts.hostname or not parts.path.strip("/"):
        raise UserError(f"MLSTREAM_METASTORE_URL={url!r}: expected postgresql://user@host:port/database")
    if parts.password:
        # Spark's settings end up in its event log and UI: a password goes in ~/.pgpass, which the driver reads.
        raise UserError("MLSTREAM_METASTORE_URL holds a password: put it in ~/.pgpass (or PGPASSFILE) instead")
    return f"jdbc:postgresql://{parts.hostname}:{parts.port or 5432}{parts.path}", parts.username or "metastore"


def warehouse(settings: Settings) -> str:
    return settings.warehouse or str(settings.state_dir / "spark" / "warehouse")


def metastore_conf(settings: Settings) -> dict[str, str]:
    """Spark settings of a session on the shared metastore and warehouse (no jars: :func:`catalog_jars`)."""
    url, user = jdbc(settings.metastore_url)
    conf = {
        "spark.sql.catalogImplementation": "hive",
        "spark.sql.warehouse.dir": warehouse(settings),
        "spark.hadoop.javax.jdo.option.ConnectionURL": url,
        "spark.hadoop.javax.jdo.option.ConnectionDriverName": "org.postgresql.Driver",
        "spark.hadoop.javax.jdo.option.ConnectionUserName": user,
        "spark.hadoop.datanucleus.schema.autoCreateTables": "true",
        "spark.hadoop.datanucleus.schema.autoCreateColumns": "true",
        "spark.hadoop.datanucleus.schema.autoCreateConstraints": "false",
        "spark.hadoop.hive.metastore.schema.verification": "false",
    }
    if settings.s3_endpoint_url:
        conf |= {"spark.hadoop.fs.s3a.endpoint": settings.s3_endpoint_url,
                 "spark.hadoop.fs.s3a.endpoint.region": "us-east-1",
                 "spark.hadoop.fs.s3a.path.style.access": "true",
                 "spark.hadoop.fs.s3a.connection.ssl.enabled": str(settings.s3_endpoint_url.startswith("https"))
                 .lower()}
    return conf


def main(argv: list[str]) -> int:
    """``python -m spark_jobs.catalog conf``: the settings as ``key=value`` lines, then ``classpath=a.jar:b.jar``."""
    if argv != ["conf"]:
        print("usage: python -m spark_jobs.catalog conf", file=sys.stderr)
        return 2
    settings = Settings.from_env()
    try:
        for key, value in metastore_conf(settings).items():
            print(f"{key}={value}")
        print("classpath=" + ":".join(str(j) for j in catalog_jars(settings)))
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
