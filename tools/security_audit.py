"""Shipping the secured local broker's authorizer log, and the SQL endpoint's queries, to the audit topic
(``mlstream security audit [--warehouse]``).

The broker logs each decision of its authorizer to ``logs/kafka-authorizer.log`` (denials at
INFO, allowed access at DEBUG: see ``conf/kafka/log4j2.properties``). Each run reads the lines
added since the last (the position is kept beside the log), turns them into Ranger-format
audit records, summarises identical ones, and writes them to the audit topic.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

from mlstream.errors import UserError
from mlstream.profiles import SECURE_LOCAL, SECURE_LOCAL_SUPER_USER
from mlstream.security import audit, warehouse_audit
from mlstream.security.audit_topic import AuditWriter
from mlstream.settings import Settings
from tools.local_services.kafka import authorizer_log
from tools.local_services.state import state_paths


def ship_authorizer_log(settings: Settings, log_path: Path | None = None) -> dict:
    """Write the authorizer decisions logged since the last run as audit records; say how many of each."""
    if log_path is None:
        if settings.profile != SECURE_LOCAL:
            raise UserError("the authorizer log is on the broker: on a profile other than secure-local, give its "
                            "path with --log FILE (kafka.authorizer.logger at DEBUG for allowed access)")
        log_path = authorizer_log(state_paths(settings))
    if not log_path.exists():
        raise UserError(f"no authorizer log at {log_path}: is the secure-local broker up (mlstream --profile "
                        f"secure-local up)?")
    position_file = log_path.with_name(log_path.name + ".audited")
    position = int(position_file.read_text()) if position_file.exists() else 0
    size = log_path.stat().st_size
    if size < position:  # rolled over: the new file is read from its start
        position = 0
    with log_path.open("rb") as log:
        log.seek(position)
        text = log.read(size - position)
    complete = text[:text.rfind(b"\n") + 1]  # a line being written is left for the next run
    host = socket.gethostname()
    events = [e for e in (audit.parse_authorizer_line(line, cluster=settings.bootstrap_servers, agent_host=host)
                          for line in complete.decode("utf-8", errors="replace").splitlines()) if e]
    records = audit.summarise(events, skip_users=[SECURE_LOCAL_SUPER_USER])
    writer = AuditWriter(settings)
    writer.write(records)
    writer.flush()
    position_file.write_text(str(position + len(complete)))
    return {"decisions": len(events), "audit_records": len(records),
            "denied": sum(1 for r in records if not r["result"]), "topic": writer.topic}


def warehouse_events_dir(settings: Settings) -> Path:
    """Where ``infra/catalog/catalog.sh`` has the SQL endpoint write its Spark event log."""
    return settings.state_dir / "catalog" / "events"


def ship_warehouse_queries(settings: Settings, events_dir: Path | None = None) -> dict:
    """Write the SQL endpoint's queries logged since the last run as audit records; say how many.

    Each event log (one per Thrift server start; ``.inprogress`` while it runs) is read from where
    the last run stopped, complete lines only; the position and the statements still open are kept in
    ``.audited.json`` beside them.
    """
    events_dir = events_dir or warehouse_events_dir(settings)
    if not events_dir.is_dir():
        raise UserError(f"no event log of the SQL endpoint in {events_dir}: start it with 'mlstream up --with "
                        f"catalog'")
    state_file = events_dir / ".audited.json"
    state = json.loads(state_file.read_text()) if state_file.exists() else {}
    records: list[dict] = []
    statements = 0
    for log_path in sorted(p for p in events_dir.iterdir() if p.is_file() and not p.name.startswith(".")):
        key = log_path.name.removesuffix(".inprogress")  # the same log once the server stopped and renamed it
        seen = state.get(key, {"position": 0, "audit": None})
        with log_path.open("rb") as log:
            log.seek(seen["position"])
            text = log.read()
        complete = text[:text.rfind(b"\n") + 1]
        events = [json.loads(line) for line in complete.decode("utf-8", errors="replace").splitlines() if line]
        statements += sum(1 for e in events if e.get("Event", "").endswith("ThriftServerOperationStart"))
        auditor = warehouse_audit.EventLogAudit(repo="mlstream_hive", cluster=settings.metastore_url.rpartition("@")[2],
                                                agent_host=socket.gethostname(), state=seen["audit"])
        records += auditor.feed(events)
        state[key] = {"position": seen["position"] + len(complete), "audit": auditor.state}
    writer = AuditWriter(settings)
    writer.write(records)
    writer.flush()
    state_file.write_text(json.dumps(state))
    return {"statements": statements, "audit_records": len(records), "topic": writer.topic}
