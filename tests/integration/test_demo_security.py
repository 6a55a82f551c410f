"""`mlstream demo security --json` as a user runs it, checked by an independent confluent-kafka client.

The demo runs on the secure-local broker under a topic prefix of its own; its JSON gives each
principal's client settings, with which a plain confluent-kafka consumer (no mlstream code) is
refused on the raw topic and reads, from its own team's topic, records without a raw value.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, TopicPartition

from mlstream.registry import training
from mlstream.registry.metadata_log import open_registry
from mlstream.security import audit
from mlstream.security.audit_topic import read_audit
from mlstream.settings import Settings

pytestmark = pytest.mark.integration

RECORDS = 400


def independent_read(config: dict, topic: str) -> list[bytes] | KafkaError:
    consumer = Consumer({**config, "group.id": f"independent-{uuid.uuid4().hex}", "enable.auto.commit": False})
    try:
        metadata = consumer.list_topics(topic, timeout=15).topics[topic]
        if metadata.error is not None:
            return metadata.error
        partitions = [TopicPartition(topic, p, 0) for p in metadata.partitions]
        ends = {tp.partition: consumer.get_watermark_offsets(tp, timeout=15)[1] for tp in partitions}
        consumer.assign(partitions)
        values = []
        while any(consumer.position([tp])[0].offset < ends[tp.partition] for tp in partitions):
            message = consumer.poll(1.0)
            if message is not None and not message.error():
                values.append(message.value())
        return values
    finally:
        consumer.close()


def test_the_demo_s_figures_hold_for_an_independent_client(secured_services, tmp_path):
    prefix = f"demo-{uuid.uuid4().hex[:8]}."
    env = os.environ | secured_services.to_env() | {"MLSTREAM_TOPIC_PREFIX": prefix,
                                                    "PATH": f"{Path(sys.executable).parent}{os.pathsep}"
                                                            f"{os.environ['PATH']}"}
    done = subprocess.run(["mlstream", "--profile", "secure-local", "demo", "security", "--json", "--records",
                           str(RECORDS)], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    raw = summary["raw_topic"]
    assert raw == f"{prefix}customers" and summary["records_published"] == RECORDS
    assert summary["secure_topics"] == {f"{raw}.secure.fraud": "fraud", f"{raw}.secure.churn": "churn"}
    assert summary["raw_values_in_secure_topics"] == 0 and summary["denied_reads"] == 4
    counts = summary["records_per_secure_topic"]
    assert 0 < counts[f"{raw}.secure.fraud"] < RECORDS and 0 < counts[f"{raw}.secure.churn"] < RECORDS
    assert summary["teams"]["fraud"]["fields_masked"] == ["birth_date", "email", "name", "phone"]
    assert summary["teams"]["churn"]["fields_left_out"] == ["name", "phone"]
    assert summary["teams"]["fraud"]["rows_filtered"] + counts[f"{raw}.secure.fraud"] == RECORDS

    fraud = summary["principals"]["fraud-fay"]
    assert fraud["team"] == "fraud" and fraud["security.protocol"] == "SASL_SSL"
    config = {k: v for k, v in fraud.items() if k != "team"}
    refused = independent_read(config, raw)
    assert isinstance(refused, KafkaError) and refused.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, refused
    values = independent_read(config, f"{raw}.secure.fraud")
    assert isinstance(values, list) and len(values) == counts[f"{raw}.secure.fraud"]
    assert not any(b"@example.com" in v for v in values)  # every e-mail of the raw feed ends so; fraud hashes them

    # The audit: the denials are there, from the broker's own authorizer, and `mlstream access who` tells them
    assert summary["audit_records"] > 0
    who = subprocess.run(["mlstream", "--profile", "secure-local", "access", "who", raw, "--json"], env=env,
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert who.returncode == 0, who.stderr
    rows = json.loads(who.stdout)
    denied = {(r["user"], r["resource"]) for r in rows if r["result"] == "denied"}
    assert {("fraud-fay", raw), ("fraud-fay", f"{raw}.secure.churn"), ("churn-chen", raw),
            ("churn-chen", f"{raw}.secure.fraud")} <= denied
    assert all(r["enforcer"] == "kafka-acl" for r in rows if r["result"] == "denied")
    allowed = {(r["user"], r["resource"], r["access"]) for r in rows if r["result"] == "allowed"}
    assert ("fraud-fay", f"{raw}.secure.fraud", "consume") in allowed
    assert ("owner-olga", raw, "publish") in allowed
    masked = [r for r in rows if r["access"] == "mask" and r["resource"] == f"{raw}.secure.fraud"]
    assert masked and masked[0]["events"] == counts[f"{raw}.secure.fraud"] and masked[0]["policy_versions"]


def test_a_build_trained_on_a_secure_dataset_says_so_and_reproduces_its_masked_bytes(secured_services, tmp_path):
    prefix = f"demo-{uuid.uuid4().hex[:8]}."
    env = os.environ | secured_services.to_env() | {"MLSTREAM_TOPIC_PREFIX": prefix, "MLSTREAM_FEATURE_VIEW": "fraud",
                                                    "PATH": f"{Path(sys.executable).parent}{os.pathsep}"
                                                            f"{os.environ['PATH']}"}

    def mlstream(*args: str) -> subprocess.CompletedProcess:
        done = subprocess.run(["mlstream", "--profile", "secure-local", *args], env=env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"{args}: {done.stderr}"
        return done

    summary = json.loads(mlstream("demo", "security", "--json", "--records", "300").stdout)
    secure = f"{summary['raw_topic']}.secure.fraud"
    (tmp_path / "fraud.yaml").write_text(f"""\
records:
  topic: {secure}
  id: {{field: id}}
  event_time: {{field: signed_up_ms}}
features:
  - {{path: tenure_months, type: number}}
  - {{path: monthly_spend, type: number}}
  - {{path: support_calls, type: number}}
labels:
  topic: {secure}
  id: {{field: id}}
  label: {{field: churned}}
  event_time: {{field: signed_up_ms}}
""")
    mlstream("config", "put", "featureview.fraud", "fraud.yaml")
    build = json.loads(mlstream("models", "build", "fraud-churn", "--spec", "logistic_regression", "--json").stdout)
    manifest = build["data"]
    assert manifest["records_topic"] == secure and manifest["feature_view"] == "fraud@1"
    assert manifest["secure_dataset"] == {"topic": secure,
                                          "policy_versions": summary["teams"]["fraud"]["policy_versions"]}
    reproduced = mlstream("lineage", "reproduce", "fraud-churn/1", "--out", "out").stdout
    assert "every split reproduced byte for byte" in reproduced and "DIFFERS" not in reproduced

    # Who worked on the dataset used for train/val/test (`lineage who`'s builds): the build joined with the
    # audit names the team's data scientist, who read the secure topic it trained on
    settings = Settings.from_env(env, profile="secure-local")
    builds = [(f"{b.model}/{b.version}", training.manifest_of(b)) for b in open_registry(settings).builds()]
    [joined] = audit.build_readers(builds, read_audit(settings), summary["raw_topic"])
    assert joined["build"] == "fraud-churn/1" and joined["topic"] == secure
    assert {split: ranges for split, ranges in joined["splits"].items()} == {
        s["name"]: [[r["partition"], r["start"], r["end"]] for r in s["records"]] for s in manifest["splits"]}
    assert ("fraud-fay", "allowed") in {(r["user"], r["result"]) for r in joined["readers"]}
