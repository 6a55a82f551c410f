"""``mlstream spark secure-view --topic T --team TEAM``: a team's secure dataset as a Spark SQL view of the raw topic.

The same hive-type policies as the secure-dataset processor (:mod:`mlstream.security.secure_datasets`),
written as Spark SQL over the raw topic decoded: each masked column by Spark's built-ins as Hive
computes the mask (``mask()``, ``sha2()``, ``make_date()``, ``NULL``), the row filter printed
back from mlstream's parsed tree (:func:`mlstream.security.expressions.to_sql`, every literal
quoted by it). So a team gets the same rows and values from Spark as from its secure topic.

=================== ============================================================================
mask type           Spark SQL of column ``c`` (string; dates and integers where the mask has them)
=================== ============================================================================
MASK                ``mask(c)``; an integer's digits ``1``; a date ``DATE'0001-01-01'``
MASK_SHOW_LAST_4    ``concat(mask(substring(c, 1, length(c) - 4), 'x', 'x', 'x'), substring(c, -4))``
MASK_SHOW_FIRST_4   ``concat(substring(c, 1, 4), mask(substring(c, 5), 'x', 'x', 'x'))``
MASK_HASH           ``sha2(CAST(c AS STRING), 256)``
MASK_NULL           ``NULL``
MASK_NONE           ``c``
MASK_DATE_SHOW_YEAR ``make_date(year(c), 1, 1)``; a string ``mask(c, 'x', 'x', 'x')``
CUSTOM              the ``valueExpr`` tree as SQL, ``{col}`` being ``c``
=================== ============================================================================

Without a metastore the view is a temporary view of the session, over the topic read now. On the
shared metastore (``MLSTREAM_METASTORE_URL``) it is a metastore view, ``<database>.<topic>_secure_<team>``,
over the managed table ``<database>.<topic>_raw`` (the topic decoded, rewritten by each run), so
every engine on the metastore, the SQL endpoint among them, gets the same masked rows. The
endpoint does not enforce who may read the raw table (no Ranger plugin in Spark's Thrift
server): its query audit (docs/catalog.md) records who did.

A mask a type has no Spark form for here (the SHOW masks on an integer, a CUSTOM using Hive's
``mask_*`` functions, which Spark lacks) is a clear error, not a different result.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from mlstream.config_store import ConfigStore, open_config_store
from mlstream.errors import UserError
from mlstream.kafka import clients
from mlstream.kafka.serde import value_subject
from mlstream.security import configs
from mlstream.security.expressions import functions, quoted_column, to_sql
from mlstream.security.secure_datasets import ColumnMask, TeamView, ViewError, team_views
from mlstream.settings import Settings
from spark_jobs.avro import TopicSchemas, commented, decode, decoded_rows, kafka_options
from spark_jobs.session import table_name, write_table

INTEGERS = ("int", "long")
#: Hive's functions that Spark lacks, or has with other arguments (Spark's mask takes 5, Hive's 9).
HIVE_MASK_FUNCTIONS = {"mask", "mask_first_n", "mask_last_n", "mask_show_first_n", "mask_show_last_n", "mask_hash"}


def _base_type(avro_type) -> str:
    types = [t for t in (avro_type if isinstance(avro_type, list) else [avro_type]) if t != "null"]
    first = types[0] if len(types) == 1 else "union"
    if isinstance(first, dict):
        return "date" if first.get("logicalType") == "date" else first.get("type", "record")
    return first


def mask_sql(mask: ColumnMask, avro_type, user: dict) -> str:
    """The Spark SQL expression of one masked column."""
    c, kind, m = quoted_column(mask.column), _base_type(avro_type), mask.mask_type
    if m == "MASK_NONE":
        return c
    if m == "MASK_NULL" or (kind not in ("string", "date", *INTEGERS) and m not in ("MASK_HASH", "CUSTOM")):
        return "NULL"  # Hive's mask functions return NULL for the types they do not mask
    if m == "MASK_HASH":
        return f"sha2(CAST({c} AS STRING), 256)"
    if m == "CUSTOM":
        if functions(mask.value_expr) & HIVE_MASK_FUNCTIONS:
            raise UserError(f"policy {mask.policy!r}: the CUSTOM mask of {mask.column} uses Hive's mask functions, "
                            f"which Spark does not have with the same arguments; use concat, substr, sha2, ...")
        return to_sql(mask.value_expr, user, column_sql=c)
    integer_mask = f"CAST(regexp_replace(CAST({c} AS STRING), '[0-9]', '1') AS {'INT' if kind == 'int' else 'BIGINT'})"
    if m == "MASK":
        return {"string": f"mask({c})", "date": "DATE'0001-01-01'"}.get(kind, integer_mask)
    if m == "MASK_DATE_SHOW_YEAR":
        return {"string": f"mask({c}, 'x', 'x', 'x')", "date": f"make_date(year({c}), 1, 1)"}.get(kind, integer_mask)
    if kind == "date":
        return "DATE'0001-01-01'"
    if kind in INTEGERS:
        raise UserError(f"policy {mask.policy!r}: {m} of the integer column {mask.column} has no Spark form here")
    if m == "MASK_SHOW_LAST_4":
        return (f"CASE WHEN length({c}) <= 4 THEN {c} ELSE concat(mask(substring({c}, 1, length({c}) - 4), 'x', 'x', "
                f"'x'), substring({c}, -4)) END")
    return f"CASE WHEN length({c}) <= 4 THEN {c} ELSE concat(substring({c}, 1, 4), mask(substring({c}, 5), 'x', " \
           f"'x', 'x')) END"


def view_sql(view: TeamView, raw_schema: dict, source: str) -> str:
    """``SELECT`` the team's columns, masked, ``FROM source WHERE`` its row filter."""
    types = {f["name"]: f["type"] for f in raw_schema["fields"]}
    columns = [f"{mask_sql(view.masks[c], types[c], view.user)} AS {quoted_column(c)}" if c in view.masks
               else quoted_column(c) for c in view.columns]
    where = f" WHERE {to_sql(view.row_filter, view.user)}" if view.row_filter is not None else ""
    return f"SELECT {', '.join(columns)} FROM {source}{where}"


def team_view(settings: Settings, topic: str, team: str, store: ConfigStore) -> tuple[TeamView, dict, TopicSchemas]:
    directory = configs.load_directory(store)
    policies = configs.load_policies(store, "security.hive", directory.value) if directory else None
    if policies is None:
        raise UserError("no security.directory and security.hive stored: see docs/security.md")
    client = clients.registry_client(settings)
    subject = value_subject(topic)
    latest = client.get_version(subject, "latest")
    raw_schema = json.loads(latest.schema.schema_str)
    views = team_views(policies.value, directory.value, topic, raw_schema, policies.version)
    if team not in views:
        raise UserError(f"team {team!r} is granted select on {topic} by no policy of security.hive "
                        f"v{policies.version} (teams: {', '.join(sorted(views)) or 'none'})")
    if isinstance(views[team], ViewError):
        raise UserError(str(views[team]))
    writers = {client.get_version(subject, v).schema_id: None for v in client.get_versions(subject)}
    schemas = TopicSchemas(topic, latest.schema.schema_str,
                           {schema_id: client.get_schema(schema_id).schema_str for schema_id in writers})
    return views[team], raw_schema, schemas


def view_name(topic: str, team: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in f"{topic}_secure_{team}")


def raw_table(topic: str) -> str:
    """The metastore table of the decoded topic under its teams' views."""
    return "".join(c if c.isalnum() else "_" for c in f"{topic}_raw")


def run(spark, settings: Settings, topic: str, team: str, store: ConfigStore | None = None,
        say: Callable[[str], None] = print) -> dict:
    """Register the team's view of ``topic`` (temporary, or on the metastore) and say what it holds."""
    view, raw_schema, schemas = team_view(settings, topic, team, store or open_config_store(settings))
    frame = spark.read.format("kafka").options(**kafka_options(settings, topic)) \
        .option("startingOffsets", "earliest").option("endingOffsets", "latest").load()
    rows_now = decoded_rows(decode(frame, schemas))
    if settings.metastore_url:
        raw = write_table(spark, settings, commented(rows_now, schemas.reader_schema), raw_table(topic),
                          comment=f"{topic} decoded, unmasked: the source of its teams' secure views")
        sql = view_sql(view, raw_schema, raw)
        name = table_name(settings, view_name(topic, team))
        comment = f"team {team}'s secure view of {topic} by {view.version}".replace("\\", "").replace("'", "\\'")
        spark.sql(f"CREATE OR REPLACE VIEW {name} COMMENT '{comment}' AS {sql}")
    else:
        raw_view = f"{view_name(topic, team)}_raw"
        rows_now.createOrReplaceTempView(raw_view)
        sql = view_sql(view, raw_schema, raw_view)
        name = view_name(topic, team)
        spark.sql(sql).createOrReplaceTempView(name)
    rows = spark.table(name).count()
    say(f"spark: view {name} of {topic} for team {team} by {view.version}: {rows} rows")
    return {"view": name, "topic": topic, "team": team, "policy_version": view.version, "sql": sql, "rows": rows}
