"""The access audit: Ranger-format audit records (``AuthzAuditEvent``'s fields) on an audit topic.

Two sources write them:

* the broker's authorizer: each line of ``kafka.authorizer.logger`` (StandardAuthorizer logs
  denials at INFO, allowed access at DEBUG) is one decision
  (:func:`parse_authorizer_line`); decisions on topics and consumer groups are kept, the super
  user's are not, and identical ones are summarised into one record with an ``event_count``, as
  Ranger's audit summarisation does (:func:`summarise`);
* the secure-dataset processor: per team and batch, which policy version masked and filtered
  what into which secure topic (:func:`processor_record`).

:func:`who` answers "who read this dataset, when, allowed or denied" from those records.

>>> line = ("[2026-12-02 07:16:36,095] INFO Principal = User:fay is Denied operation = READ from host = 127.0.0.1 "
...         "on resource = Topic:LITERAL:customers for request = Fetch with resourceRefCount = 1 based on rule "
...         "DefaultDeny (kafka.authorizer.logger)")
>>> event = parse_authorizer_line(line)
>>> event["reqUser"], event["access"], event["resource"], event["resType"], event["result"], event["reason"]
('fay', 'consume', 'customers', 'topic', 0, 'DefaultDeny')
"""

from __future__ import annotations

import datetime
import re
import uuid
from collections.abc import Iterable
from typing import Any

#: Kafka operation -> Ranger kafka access (the mapping Ranger's Kafka authorizer makes).
ACCESSES = {"READ": "consume", "WRITE": "publish", "DESCRIBE": "describe", "CREATE": "create", "DELETE": "delete",
            "ALTER": "configure", "DESCRIBE_CONFIGS": "describe_configs", "ALTER_CONFIGS": "alter_configs",
            "IDEMPOTENT_WRITE": "idempotent_write", "CLUSTER_ACTION": "cluster_action", "ALL": "kafka_admin"}
RESOURCE_TYPES = {"Topic": "topic", "Group": "consumergroup", "TransactionalId": "transactionalid",
                  "Cluster": "cluster"}
#: What the audit keeps of the authorizer's decisions: data access, not the broker's own housekeeping.
KEPT_RESOURCE_TYPES = ("topic", "consumergroup")
KAFKA_ENFORCER = "kafka-acl"
PROCESSOR_ENFORCER = "mlstream-secure-datasets"
KAFKA_REPO_TYPE, HIVE_REPO_TYPE = 9, 3  # Ranger's service-def ids

_LINE = re.compile(
    r"^\[(?P<time>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})\] \w+ Principal = User:(?P<user>\S+) is "
    r"(?P<decision>Allowed|Denied) operation = (?P<operation>\w+) from host = (?P<host>\S+) on resource = "
    r"(?P<type>\w+):(?P<pattern>\w+):(?P<name>.*?) for request = (?P<request>\w+) with resourceRefCount = \d+ "
    r"based on rule (?P<rule>.*) \(kafka\.authorizer\.logger\)$")


def ranger_time(ms: int) -> str:
    """``yyyy-MM-dd HH:mm:ss.SSS`` in UTC: Ranger's evtTime."""
    moment = datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{ms % 1000:03d}"


def _ms(log_time: str) -> int:
    # The broker's log4j pattern %d is its local time; the local broker runs on this machine, in its zone.
    local = datetime.datetime.strptime(log_time, "%Y-%m-%d %H:%M:%S,%f")
    return int(local.astimezone(datetime.timezone.utc).timestamp() * 1000)


def parse_authorizer_line(line: str, repo: str = "kafka", cluster: str = "", agent_host: str = "") -> dict | None:
    """The audit event of one authorizer log line; None for any other line."""
    match = _LINE.match(line.rstrip("\n"))
    if match is None:
        return None
    ms = _ms(match["time"])
    return {"id": str(uuid.uuid4()), "seq_num": 0, "logType": "RangerAudit", "repoType": KAFKA_REPO_TYPE,
            "repo": repo, "reqUser": match["user"], "evtTime": ranger_time(ms), "evtTimeMs": ms,
            "access": ACCESSES.get(match["operation"], match["operation"].lower()),
            "action": match["operation"].lower(), "resource": match["name"],
            "resType": RESOURCE_TYPES.get(match["type"], match["type"].lower()),
            "result": 1 if match["decision"] == "Allowed" else 0, "agent": "kafka", "agentHost": agent_host,
            "enforcer": KAFKA_ENFORCER, "policy": -1, "policy_version": None, "reason": match["rule"],
            "cliIP": match["host"], "cliType": None, "reqData": match["request"], "event_count": 1,
            "event_dur_ms": 0, "tags": [], "datasets": [], "projects": [], "cluster_name": cluster,
            "zone_name": None}


def summarise(events: Iterable[dict], skip_users: Iterable[str] = ()) -> list[dict]:
    """Identical decisions (user, access, resource, result, client, request) as one record each, with
    ``event_count`` and ``event_dur_ms``; only topics and groups, none of ``skip_users``."""
    skipped = set(skip_users)
    groups: dict[tuple, dict] = {}
    for event in events:
        if event["resType"] not in KEPT_RESOURCE_TYPES or event["reqUser"] in skipped:
            continue
        key = (event["reqUser"], event["access"], event["resource"], event["resType"], event["result"],
               event["cliIP"], event["reqData"])
        if key not in groups:
            groups[key] = dict(event)
            continue
        summary = groups[key]
        summary["event_count"] += event["event_count"]
        summary["event_dur_ms"] = max(summary["event_dur_ms"], event["evtTimeMs"] - summary["evtTimeMs"])
    return sorted(groups.values(), key=lambda e: (e["evtTimeMs"], e["reqUser"], e["resource"]))


def processor_record(user: str, raw_topic: str, secure_topic: str, team: str, version: str, config_version: int,
                     written: int, masked: Iterable[str], row_filter: str | None, started_ms: int,
                     ended_ms: int) -> dict:
    """What the secure-dataset processor did for one team in one batch, as an audit record."""
    masked_text = ", ".join(masked) or "nothing"
    return {"id": str(uuid.uuid4()), "seq_num": 0, "logType": "RangerAudit", "repoType": HIVE_REPO_TYPE,
            "repo": "security.hive", "reqUser": user, "evtTime": ranger_time(started_ms), "evtTimeMs": started_ms,
            "access": "mask", "action": "secure-dataset", "resource": raw_topic, "resType": "topic", "result": 1,
            "agent": "mlstream", "agentHost": "", "enforcer": PROCESSOR_ENFORCER, "policy": -1,
            "policy_version": config_version,
            "reason": f"{version}: masked {masked_text}; rows kept where {row_filter or 'TRUE'}",
            "cliIP": "", "cliType": None, "reqData": secure_topic, "event_count": written,
            "event_dur_ms": ended_ms - started_ms, "tags": [], "datasets": [secure_topic], "projects": [team],
            "cluster_name": "", "zone_name": None}


def concerns(record: dict, dataset: str) -> bool:
    """Whether an audit record is about ``dataset`` (a raw topic) or one of its secure topics."""
    return any(name == dataset or name.startswith(f"{dataset}.secure.")
               for name in (record["resource"], *record["datasets"]))


def who(records: Iterable[dict], dataset: str) -> list[dict[str, Any]]:
    """Who accessed ``dataset`` or its secure topics: per user, resource, access and result, how many times and when."""
    rows: dict[tuple, dict] = {}
    for record in records:
        if not concerns(record, dataset):
            continue
        resource = record["reqData"] if record["enforcer"] == PROCESSOR_ENFORCER else record["resource"]
        key = (record["reqUser"], resource, record["access"], record["result"])
        row = rows.setdefault(key, {"user": record["reqUser"], "resource": resource, "access": record["access"],
                                    "result": "allowed" if record["result"] else "denied", "events": 0,
                                    "first": record["evtTimeMs"], "last": record["evtTimeMs"],
                                    "enforcer": record["enforcer"], "policy_versions": set()})
        row["events"] += record["event_count"]
        row["first"] = min(row["first"], record["evtTimeMs"])
        row["last"] = max(row["last"], record["evtTimeMs"] + record["event_dur_ms"])
        if record["policy_version"] is not None:
            row["policy_versions"].add(record["policy_version"])
    return [dict(row, first=ranger_time(row["first"]), last=ranger_time(row["last"]),
                 policy_versions=sorted(row["policy_versions"]))
            for row in sorted(rows.values(), key=lambda r: (r["first"], r["user"], r["resource"]))]


def build_readers(builds: Iterable[tuple[str, Any]], records: Iterable[dict], dataset: str) -> list[dict[str, Any]]:
    """Who worked on ``dataset`` used for train/val/test: each build (``(ref, manifest)``, a
    :class:`~mlstream.registry.manifest.BuildManifest`) whose records came from ``dataset`` or one
    of its secure topics, with the offsets each split read and the principals the audit shows
    reading that topic, allowed or denied, when.

    >>> from types import SimpleNamespace as Manifest
    >>> split = Manifest(name="train", records=[Manifest(partition=0, start=0, end=40)])
    >>> build = Manifest(records_topic="customers.secure.fraud", created_at_ms=0, secure_dataset={}, splits=[split])
    >>> read = {"reqUser": "fay", "resource": "customers.secure.fraud", "access": "consume", "result": 1,
    ...         "evtTimeMs": 1000, "event_dur_ms": 0, "event_count": 3, "enforcer": KAFKA_ENFORCER,
    ...         "policy_version": None, "datasets": []}
    >>> [joined] = build_readers([("churn/1", build)], [read], "customers")
    >>> joined["build"], joined["splits"], [(r["user"], r["result"], r["events"]) for r in joined["readers"]]
    ('churn/1', {'train': [[0, 0, 40]]}, [('fay', 'allowed', 3)])
    """
    kept = list(records)
    joined = []
    for ref, manifest in builds:
        topic = manifest.records_topic
        if topic != dataset and not topic.startswith(f"{dataset}.secure."):
            continue
        readers = [row for row in who(kept, topic) if row["resource"] == topic and row["access"] == "consume"]
        joined.append({"build": ref, "topic": topic, "trained_at": ranger_time(manifest.created_at_ms),
                       "secure_dataset": manifest.secure_dataset,
                       "splits": {s.name: [[r.partition, r.start, r.end] for r in s.records] for s in manifest.splits},
                       "readers": readers})
    return joined
