"""Ranger-format audit records from the broker's authorizer log lines, summarised; who accessed a dataset."""

from __future__ import annotations

from mlstream.registry.manifest import BuildManifest, OffsetRange, SplitManifest
from mlstream.security import audit

ALLOWED = ("[2026-12-02 07:25:42,402] DEBUG Principal = User:fraud-fay is Allowed operation = READ from host = "
           "127.0.0.1 on resource = Topic:LITERAL:mlstream.customers.secure.fraud for request = Fetch with "
           "resourceRefCount = 1 based on rule MatchingAcl(acl=StandardAcl(resourceType=TOPIC, "
           "resourceName=mlstream.customers.secure.fraud, patternType=LITERAL, principal=User:fraud-fay, host=*, "
           "operation=READ, permissionType=ALLOW)) (kafka.authorizer.logger)")
DENIED = ("[2026-12-02 07:25:43,001] INFO Principal = User:fraud-fay is Denied operation = DESCRIBE from host = "
          "127.0.0.1 on resource = Topic:LITERAL:mlstream.customers for request = Metadata with resourceRefCount = 1 "
          "based on rule DefaultDeny (kafka.authorizer.logger)")


def test_an_authorizer_line_is_one_ranger_audit_event():
    event = audit.parse_authorizer_line(ALLOWED, repo="cm_kafka", cluster="c1", agent_host="h")
    assert {k: event[k] for k in ("repoType", "repo", "reqUser", "access", "action", "resource", "resType", "result",
                                  "enforcer", "cliIP", "reqData", "event_count", "cluster_name", "agentHost",
                                  "logType")} == {
        "repoType": 9, "repo": "cm_kafka", "reqUser": "fraud-fay", "access": "consume", "action": "read",
        "resource": "mlstream.customers.secure.fraud", "resType": "topic", "result": 1, "enforcer": "kafka-acl",
        "cliIP": "127.0.0.1", "reqData": "Fetch", "event_count": 1, "cluster_name": "c1", "agentHost": "h",
        "logType": "RangerAudit"}
    assert event["reason"].startswith("MatchingAcl(acl=StandardAcl(resourceType=TOPIC") and event["reason"].endswith(
        "permissionType=ALLOW))")
    assert audit.parse_authorizer_line("[2026-12-02 07:25:43,001] INFO something else (kafka.server)") is None


def test_identical_decisions_are_summarised_and_the_super_user_and_the_cluster_are_left_out():
    later = ALLOWED.replace("07:25:42,402", "07:25:44,902")
    admin = DENIED.replace("User:fraud-fay", "User:admin")
    cluster = DENIED.replace("Topic:LITERAL:mlstream.customers", "Cluster:LITERAL:kafka-cluster")
    events = [audit.parse_authorizer_line(line) for line in (ALLOWED, later, DENIED, admin, cluster)]
    records = audit.summarise(events, skip_users=["admin"])
    assert [(r["reqUser"], r["access"], r["result"], r["event_count"], r["event_dur_ms"]) for r in records] == [
        ("fraud-fay", "consume", 1, 2, 2500), ("fraud-fay", "describe", 0, 1, 0)]
    assert records[0]["evtTime"].endswith(":42.402")


def test_who_joins_the_broker_s_and_the_processor_s_records_of_a_dataset_and_its_secure_topics():
    events = audit.summarise([audit.parse_authorizer_line(line) for line in (ALLOWED, DENIED)])
    masked = audit.processor_record("mlstream", "mlstream.customers", "mlstream.customers.secure.fraud", "fraud",
                                    "security.hive@v2", 2, 128, ["email"], "consent", 1_000, 1_500)
    elsewhere = dict(events[0], resource="other.topic")
    rows = audit.who([*events, masked, elsewhere], "mlstream.customers")
    assert [(r["user"], r["result"], r["access"], r["resource"], r["events"]) for r in rows] == [
        ("mlstream", "allowed", "mask", "mlstream.customers.secure.fraud", 128),
        ("fraud-fay", "allowed", "consume", "mlstream.customers.secure.fraud", 1),
        ("fraud-fay", "denied", "describe", "mlstream.customers", 1)]
    assert rows[0]["policy_versions"] == [2] and masked["reason"] == "security.hive@v2: masked email; rows kept " \
                                                                     "where consent"


def manifest(records_topic: str, ranges: dict[str, list[tuple[int, int, int]]]) -> BuildManifest:
    splits = [SplitManifest(name, [OffsetRange(records_topic, *r) for r in rs], 0, 0, "", "")
              for name, rs in ranges.items()]
    return BuildManifest("churn", "logistic_regression", 1, 1_796_000_000_000, "c0de", records_topic, records_topic, [],
                         {}, [], {}, {}, splits, secure_dataset={"topic": records_topic, "policy_versions": ["v1"]})


def test_build_readers_joins_each_build_on_the_dataset_with_the_principals_that_read_its_topic():
    secure = "mlstream.customers.secure.fraud"
    records = audit.summarise([audit.parse_authorizer_line(ALLOWED), audit.parse_authorizer_line(ALLOWED)])
    denied = ALLOWED.replace("DEBUG", "INFO").replace("fraud-fay is Allowed", "churn-chen is Denied")
    records += [audit.parse_authorizer_line(denied),
                audit.processor_record("mlstream", "mlstream.customers", secure, "fraud", "security.hive@v1", 1, 40,
                                       ["email"], None, 0, 5)]
    builds = [("fraud-churn/1", manifest(secure, {"train": [(0, 0, 30)], "test": [(0, 30, 40)]})),
              ("other/1", manifest("mlstream.records", {"train": [(0, 0, 9)]}))]
    [joined] = audit.build_readers(builds, records, "mlstream.customers")
    assert joined["build"] == "fraud-churn/1" and joined["topic"] == secure
    assert joined["splits"] == {"train": [[0, 0, 30]], "test": [[0, 30, 40]]}
    # who read the topic the build trained on, allowed or denied; the processor that wrote it is no reader
    assert sorted((r["user"], r["result"], r["events"]) for r in joined["readers"]) == [("churn-chen", "denied", 1),
                                                                                         ("fraud-fay", "allowed", 2)]
    assert audit.build_readers(builds, records, "mlstream.elsewhere") == []
