"""`mlstream lineage who` lists, beside the processes, who accessed the dataset as the audit saw it."""

from __future__ import annotations

from tools.lineage_views import format_who


def test_the_access_audit_is_listed_after_the_processes():
    result = {"dataset": "kafka_topic mlstream.customers@primary", "producers": [], "consumers": [],
              "access": [{"user": "fraud-fay", "result": "denied", "access": "describe",
                          "resource": "mlstream.customers", "events": 1, "first": "2026-12-02 07:25:42.509",
                          "last": "2026-12-02 07:25:42.509", "enforcer": "kafka-acl"}]}
    text = format_who(result)
    assert text.splitlines()[-2:] == [
        "access (the audit topic: who read it or its secure topics, allowed or denied):",
        "  fraud-fay  denied describe mlstream.customers  1 event(s) 2026-12-02 07:25:42.509 .. "
        "2026-12-02 07:25:42.509  (kafka-acl)"]
    assert "access" not in format_who({k: v for k, v in result.items() if k != "access"})
