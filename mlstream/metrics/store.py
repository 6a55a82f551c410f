"""Where ``read_metrics`` reads from: a table of metric records, idempotent by ``metric_id``.

Every record from the metrics topic is kept as it came (nothing is overwritten,
so nothing stored is lost); ``read`` assembles CML's rows from them: a ``row``
record plus every ``merge`` record for the same prediction uuid, in arrival
order, so a label that comes twice keeps the later value and a merge that
arrives before its row waits in the table until the row comes.

Two implementations share the SQL: :class:`SqliteMetricsStore` (a file, the
default) and :class:`PostgresMetricsStore` (psycopg 3).

    >>> from mlstream.metrics.records import metric_record, ROW, MERGE
    >>> store = SqliteMetricsStore(":memory:")
    >>> crns = ("crn:m", "crn:m/build/1", "crn:m/deployment/d")
    >>> row = metric_record(ROW, crns, {"prediction": 1.0}, 10, 10, prediction_uuid="p1")
    >>> store.put([row, row, metric_record(MERGE, crns, {"label": 1.0}, 20, 20, prediction_uuid="p1")])
    2
    >>> store.read()
    [{'modelDeploymentCrn': 'crn:m/deployment/d', 'modelBuildCrn': 'crn:m/build/1', 'modelCrn': 'crn:m', 'startTimeStampMs': 10, 'endTimeStampMs': 10, 'predictionUuid': 'p1', 'metrics': {'prediction': 1.0, 'label': 1.0}}]
"""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Iterable, Protocol

from mlstream.errors import UserError
from mlstream.metrics.records import AGGREGATE, MERGE, ROW, cml_row, plain_ms


class MetricsStore(Protocol):
    def put(self, records: Iterable[dict]) -> int:
        """Store metric records; return how many were new (a known ``metric_id`` is skipped)."""

    def read(self, model_deployment_crn: str | None = None, start_timestamp_ms: int | None = None,
             end_timestamp_ms: int | None = None, model_crn: str | None = None,
             model_build_crn: str | None = None) -> list[dict]:
        """CML rows whose window lies within [start, end], oldest first."""

    def unmatched_merges(self) -> int:
        """Merge records whose prediction uuid has no row (yet): kept, not shown by ``read``."""

    def close(self) -> None: ...


COLUMNS = ("metric_id", "kind", "model_crn", "model_build_crn", "model_deployment_crn", "prediction_uuid",
           "start_ms", "end_ms", "metrics")

CREATE = """
CREATE TABLE IF NOT EXISTS metric_records (
    seq {serial},
    metric_id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    model_crn TEXT NOT NULL,
    model_build_crn TEXT NOT NULL,
    model_deployment_crn TEXT NOT NULL,
    prediction_uuid TEXT,
    start_ms BIGINT NOT NULL,
    end_ms BIGINT NOT NULL,
    metrics TEXT NOT NULL
)"""
INDEXES = (
    "CREATE INDEX IF NOT EXISTS metric_records_window ON metric_records (end_ms, start_ms)",
    "CREATE INDEX IF NOT EXISTS metric_records_uuid ON metric_records (prediction_uuid)",
)


def _filters(args: dict) -> tuple[str, list]:
    clauses, params = [], []
    for column in ("model_deployment_crn", "model_crn", "model_build_crn"):
        if args[column] is not None:
            clauses.append(f"r.{column} = %s")
            params.append(args[column])
    clauses.append("r.start_ms >= %s")
    params.append(args["start_timestamp_ms"] or 0)
    if args["end_timestamp_ms"] is not None:
        clauses.append("r.end_ms <= %s")
        params.append(args["end_timestamp_ms"])
    return " AND ".join(clauses), params


class SqlMetricsStore:
    """The SQL both stores share; subclasses supply a DB-API connection and its quirks."""

    serial = "INTEGER PRIMARY KEY AUTOINCREMENT"
    insert_ignore = "INSERT INTO metric_records ({cols}) VALUES ({marks}) ON CONFLICT (metric_id) DO NOTHING"

    def __init__(self, connection):
        self.connection = connection
        self.lock = threading.Lock()  # one connection, shared by the threads of one process
        with self.lock:
            cursor = self.connection.cursor()
            cursor.execute(CREATE.format(serial=self.serial))
            for statement in INDEXES:
                cursor.execute(statement)
            self.connection.commit()

    def sql(self, text: str) -> str:
        return text

    def put(self, records: Iterable[dict]) -> int:
        rows = [(
            r["metric_id"], r.get("kind") or AGGREGATE, r["model_crn"], r["model_build_crn"],
            r["model_deployment_crn"], r.get("prediction_uuid"), plain_ms(r["start_timestamp_ms"]),
            plain_ms(r["end_timestamp_ms"]), json.dumps(r["metrics"], sort_keys=True),
        ) for r in records]
        if not rows:
            return 0
        statement = self.sql(self.insert_ignore.format(cols=", ".join(COLUMNS), marks=", ".join(["%s"] * len(COLUMNS))))
        with self.lock:
            cursor = self.connection.cursor()
            before = self.changes(cursor)
            cursor.executemany(statement, rows)
            new = self.changes(cursor) - before
            self.connection.commit()
        return new

    def changes(self, cursor) -> int:
        """Rows inserted so far, as this database counts them (compared before and after a batch)."""
        raise NotImplementedError

    def read(self, model_deployment_crn=None, start_timestamp_ms=None, end_timestamp_ms=None, model_crn=None,
             model_build_crn=None) -> list[dict]:
        where, params = _filters(locals())
        cols = "r.model_crn, r.model_build_crn, r.model_deployment_crn, r.start_ms, r.end_ms, r.prediction_uuid, r.metrics"
        rows_sql = self.sql(f"SELECT {cols}, r.seq FROM metric_records r WHERE r.kind IN ('{ROW}', '{AGGREGATE}') "
                            f"AND {where} ORDER BY r.start_ms, r.seq")
        # Merges for the rows above; their own CRNs and times do not matter, their order does.
        merges_sql = self.sql(
            f"SELECT m.prediction_uuid, m.metrics FROM metric_records m JOIN metric_records r "
            f"ON m.prediction_uuid = r.prediction_uuid AND r.kind = '{ROW}' "
            f"WHERE m.kind = '{MERGE}' AND {where} ORDER BY m.seq")
        with self.lock:
            cursor = self.connection.cursor()
            cursor.execute(rows_sql, params)
            rows = cursor.fetchall()
            cursor.execute(merges_sql, params)
            merges = cursor.fetchall()
            self.connection.commit()  # end the read transaction (PostgreSQL)
        merged: dict[str, dict] = {}
        for prediction_uuid, metrics in merges:
            merged.setdefault(prediction_uuid, {}).update(json.loads(metrics))
        out, seen_rows = [], set()
        for model, build, deployment, start, end, prediction_uuid, metrics, _ in rows:
            if prediction_uuid is not None:
                if prediction_uuid in seen_rows:  # a second row for one uuid adds to the first
                    continue
                seen_rows.add(prediction_uuid)
            values = json.loads(metrics)
            values.update(merged.get(prediction_uuid, {}) if prediction_uuid else {})
            out.append(cml_row(model, build, deployment, int(start), int(end), prediction_uuid, values))
        return out

    def unmatched_merges(self) -> int:
        statement = (f"SELECT COUNT(*) FROM metric_records m WHERE m.kind = '{MERGE}' AND NOT EXISTS "
                     f"(SELECT 1 FROM metric_records r WHERE r.kind = '{ROW}' AND r.prediction_uuid = m.prediction_uuid)")
        with self.lock:
            cursor = self.connection.cursor()
            cursor.execute(statement)
            (count,) = cursor.fetchone()
            self.connection.commit()
        return int(count)

    def count(self) -> int:
        with self.lock:
            cursor = self.connection.cursor()
            cursor.execute("SELECT COUNT(*) FROM metric_records")
            (count,) = cursor.fetchone()
            self.connection.commit()
        return int(count)

    def close(self) -> None:
        self.connection.close()


class SqliteMetricsStore(SqlMetricsStore):
    """The embedded default: one SQLite file (``:memory:`` for a throwaway store)."""

    def __init__(self, path: str | Path):
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(str(path), check_same_thread=False, timeout=30)
        connection.execute("PRAGMA journal_mode=WAL")  # readers (the CLI) do not block the materializer
        super().__init__(connection)

    def sql(self, text: str) -> str:
        return text.replace("%s", "?")

    def changes(self, cursor) -> int:
        return self.connection.total_changes


class PostgresMetricsStore(SqlMetricsStore):
    """PostgreSQL through psycopg 3, as CML keeps its model metrics."""

    serial = "BIGSERIAL PRIMARY KEY"

    def __init__(self, url: str):
        import psycopg

        try:
            connection = psycopg.connect(url, connect_timeout=10)
        except psycopg.OperationalError as err:
            raise UserError(f"cannot connect to the metrics store {url}: {err}".strip()
                            + "\n(start the local one with: bash infra/postgres.sh)") from err
        super().__init__(connection)

    def changes(self, cursor) -> int:
        # psycopg 3 sums rowcount over executemany; a fresh cursor starts at -1
        return max(cursor.rowcount, 0)


def open_store(url: str) -> SqlMetricsStore:
    """``postgresql://...`` opens PostgreSQL; ``sqlite:///path`` or a plain path opens a SQLite file."""
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresMetricsStore(url)
    if url.startswith("sqlite:///"):
        return SqliteMetricsStore(url[len("sqlite:///"):])
    if "://" in url:
        raise UserError(f"unknown metrics store URL {url!r}: use postgresql://... or sqlite:///path/to/file.db")
    return SqliteMetricsStore(url)
