"""The SQL endpoint's queries as Ranger-format audit records: who selected which columns of which tables.

Spark's Thrift server writes its events to Spark's event log (one JSON object a line): a
session's user and client address (``SparkListenerThriftServerSessionCreated``), each
statement with its user (``...OperationStart``; its ``groupId`` is the job group of what it
runs) and, for a statement that runs a query, the query's physical plan
(``SparkListenerSQLExecutionStart`` with that ``jobGroupId``), whose ``Scan`` nodes name each
table read and the columns read from it. :class:`EventLogAudit` pairs them into one record per
statement and table: ``resType`` column (or table when no column is read), ``access`` select,
``resource`` ``db/table/col1,col2`` as Ranger's Hive plugin writes it, the statement in ``reqData``.

What it is not: an authorizer. The endpoint runs with no authentication (NOSASL) and no
Ranger plugin, so each record says what was read (``result`` 1), never what was refused; a view
is audited as the tables its plan scans, as a query of it reads them.

>>> audit = EventLogAudit(repo="mlstream_hive", cluster="metastore")
>>> events = [
...     {"Event": THRIFT + "SparkListenerThriftServerSessionCreated", "ip": "127.0.0.1", "sessionId": "s",
...      "userName": "fay", "startTime": 1796221804746},
...     {"Event": THRIFT + "SparkListenerThriftServerOperationStart", "id": "o", "sessionId": "s", "groupId": "g",
...      "statement": "SELECT id FROM db.t", "startTime": 1796221804794, "userName": "fay"},
...     {"Event": SQL_START, "jobGroupId": "g", "physicalPlanDescription":
...      "(1) Scan parquet spark_catalog.db.t\\nOutput [2]: [id#20, kafka_date#41]\\nBatched: true\\n"}]
>>> [(r["reqUser"], r["access"], r["resType"], r["resource"], r["cliIP"], r["datasets"]) for r in audit.feed(events)]
[('fay', 'select', 'column', 'db/t/id,kafka_date', '127.0.0.1', ['db.t'])]
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable

from mlstream.security.audit import HIVE_REPO_TYPE, ranger_time

THRIFT = "org.apache.spark.sql.hive.thriftserver.ui."
SQL_START = "org.apache.spark.sql.execution.ui.SparkListenerSQLExecutionStart"
ENFORCER = "mlstream-sql-endpoint"

_SCAN = re.compile(r"^\(\d+\) Scan \S+ (?:spark_catalog\.)?(?P<table>[\w.]+)\s*$", re.MULTILINE)
_OUTPUT = re.compile(r"^Output \[\d+\]: \[(?P<columns>[^\]]*)\]", re.MULTILINE)


def scans(plan: str) -> list[tuple[str, list[str]]]:
    """(db.table, columns) of each table a physical plan's description scans.

    >>> scans("(1) Scan parquet spark_catalog.db.t\\nOutput [2]: [id#20, score#28]\\n\\n(2) Filter")
    [('db.t', ['id', 'score'])]
    """
    found = []
    for match in _SCAN.finditer(plan):
        output = _OUTPUT.search(plan, match.end())
        columns = [c.strip().split("#")[0] for c in output["columns"].split(",") if c.strip()] if output else []
        found.append((match["table"].lower(), columns))
    return found


class EventLogAudit:
    """Turns the event log's lines, in order, into audit records; keeps what a later line still needs
    (sessions, statements not yet closed) in :attr:`state`, so a run can go on where the last stopped."""

    def __init__(self, *, repo: str, cluster: str, agent_host: str = "", state: dict | None = None) -> None:
        self.repo, self.cluster, self.agent_host = repo, cluster, agent_host
        self.state = state or {"sessions": {}, "operations": {}}

    def feed(self, events: Iterable[dict]) -> list[dict]:
        records = []
        sessions, operations = self.state["sessions"], self.state["operations"]
        for event in events:
            kind = event.get("Event", "")
            if kind == THRIFT + "SparkListenerThriftServerSessionCreated":
                sessions[event["sessionId"]] = {"user": event["userName"], "ip": event["ip"]}
            elif kind == THRIFT + "SparkListenerThriftServerSessionClosed":
                sessions.pop(event["sessionId"], None)
            elif kind == THRIFT + "SparkListenerThriftServerOperationStart":
                operations[event["groupId"]] = {"id": event["id"], "user": event["userName"],
                                                "statement": event["statement"], "time": int(event["startTime"]),
                                                "ip": sessions.get(event["sessionId"], {}).get("ip", "")}
            elif kind == THRIFT + "SparkListenerThriftServerOperationClosed":
                for group, operation in list(operations.items()):
                    if operation["id"] == event["id"]:
                        del operations[group]
            elif kind == SQL_START and event.get("jobGroupId") in operations:
                operation = operations[event["jobGroupId"]]
                records += [self.record(operation, table, columns)
                            for table, columns in scans(event.get("physicalPlanDescription", ""))]
        return records

    def record(self, operation: dict, table: str, columns: list[str]) -> dict:
        db, _, name = table.partition(".")
        ms = operation["time"]
        return {"id": str(uuid.uuid4()), "seq_num": 0, "logType": "RangerAudit", "repoType": HIVE_REPO_TYPE,
                "repo": self.repo, "reqUser": operation["user"], "evtTime": ranger_time(ms), "evtTimeMs": ms,
                "access": "select", "action": "query", "resource": f"{db}/{name}" + (
                    f"/{','.join(columns)}" if columns else ""), "resType": "column" if columns else "table",
                "result": 1, "agent": "hiveServer2", "agentHost": self.agent_host, "enforcer": ENFORCER,
                "policy": -1, "policy_version": None,
                "reason": "read through the SQL endpoint, which authorises nothing (no Ranger plugin)",
                "cliIP": operation["ip"], "cliType": "HiveServer2", "reqData": operation["statement"],
                "event_count": 1, "event_dur_ms": 0, "tags": [], "datasets": [table], "projects": [],
                "cluster_name": self.cluster, "zone_name": None}
