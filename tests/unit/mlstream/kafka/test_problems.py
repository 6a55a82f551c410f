"""The one-line errors: what failed, where, under which profile, what to do; None for a bug."""

from __future__ import annotations

import dataclasses
import socket

import pytest
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.schema_registry.error import SchemaRegistryError

from mlstream.errors import AccessDenied
from mlstream.kafka import clients, problems
from mlstream.settings import Settings
from tools import cli
from tools.commands.config import show_profile


@pytest.fixture
def scram() -> Settings:
    return dataclasses.replace(
        Settings.from_env({}), profile="prod", bootstrap_servers="b1:9093",
        kafka_security=(("security.protocol", "SASL_SSL"), ("sasl.mechanism", "SCRAM-SHA-512"),
                        ("sasl.username", "alice"), ("sasl.password", "${ALICE_PW}")))


def kafka_exception(code: int, text: str = "") -> KafkaException:
    return KafkaException(KafkaError(code, text) if text else KafkaError(code))


@pytest.mark.parametrize("code, text, expected", [
    (KafkaError._TRANSPORT, "", "no Kafka at b1:9093 (profile prod): start it with `mlstream up` or check "
                                "bootstrap.servers"),
    (KafkaError._AUTHENTICATION, "SASL authentication error: invalid credentials",
     "authentication failed at b1:9093 for user 'alice' (profile prod, SASL_SSL SCRAM-SHA-512): check sasl.username "
     "and sasl.password (SASL authentication error: invalid credentials)"),
    (KafkaError._TRANSPORT, "b1:9093/bootstrap: SSL handshake failed: certificate verify failed",
     "TLS handshake with b1:9093 failed (profile prod, CA the system's CAs): check ssl.ca.location"),
    (KafkaError.TOPIC_AUTHORIZATION_FAILED, "", "authorization denied: User:alice may not use topic"),
    (KafkaError.CLUSTER_AUTHORIZATION_FAILED, "Failed to acquire idempotence PID: Cluster authorization failed",
     "authorization denied: User:alice may not IDEMPOTENT_WRITE (or WRITE on any topic) cluster kafka-cluster"),
    (KafkaError.SECURITY_DISABLED, "Security features are disabled", "the broker at b1:9093 (profile prod) has no "
     "authorizer, so no ACLs: use a secured cluster's profile"),
])
def test_kafka_errors_say_what_to_do(scram, code, text, expected):
    assert problems.explain(kafka_exception(code, text), scram).startswith(expected)


def test_a_timeout_is_explained_by_what_librdkafka_said_just_before(scram):
    clients.RECENT_ERRORS.clear()
    clients.RECENT_ERRORS.append(KafkaError(KafkaError._AUTHENTICATION, "SASL authentication error"))
    try:
        assert problems.explain(kafka_exception(KafkaError._TRANSPORT), scram).startswith("authentication failed")
    finally:
        clients.RECENT_ERRORS.clear()
    assert problems.explain(kafka_exception(KafkaError._TRANSPORT), scram).startswith("no Kafka at")


def test_a_denial_names_the_principal_and_the_resource(scram):
    assert problems.explain(AccessDenied("CREATE", "topic", "mlstream.records"), scram) == (
        "authorization denied: User:alice may not CREATE topic mlstream.records: grant it an ACL, or use a profile "
        "whose user has one")


def test_registry_errors_say_what_to_do(scram):
    refused = problems.explain(SchemaRegistryError(401, 40101, "Unauthorized"), scram)
    assert refused.startswith(f"the Schema Registry at {scram.schema_registry_url} (profile prod) refused the "
                              "credentials (401): check the profile's schema_registry basic.auth.user.info")
    missing = problems.explain(SchemaRegistryError(404, problems.SUBJECT_NOT_FOUND, "Subject 'x-value' not found"),
                               scram)
    assert missing.endswith("has no such subject (Subject 'x-value' not found): run `mlstream init`")
    assert problems.explain(ConnectionRefusedError(111, "Connection refused"), scram).startswith(
        f"no Schema Registry at {scram.schema_registry_url} (profile prod): start it with `mlstream up`")


def test_a_bug_is_not_explained_away(scram):
    assert problems.explain(ValueError("a bug"), scram) is None
    assert problems.explain(SchemaRegistryError(500, 50001, "boom"), scram) is None


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_probe_says_no_kafka_where_nothing_listens():
    settings = dataclasses.replace(Settings.from_env({}), bootstrap_servers=f"127.0.0.1:{closed_port()}")
    with pytest.raises(problems.ConnectionProblem, match=r"no Kafka at 127\.0\.0\.1:\d+ \(profile local\)"):
        problems.check_kafka(settings, timeout_s=1)


def test_the_cli_prints_one_line_and_exits_2(monkeypatch, capsys, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLSTREAM_SCHEMA_REGISTRY_URL", f"http://127.0.0.1:{closed_port()}")
    assert cli.main(["config", "history", "lineage.x"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mlstream config: error: Schema Registry not reachable (ConnectError")
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1
    assert cli.main(["--profile", "nope", "status"]) == 2
    assert "no profile 'nope'" in capsys.readouterr().err


def test_config_show_masks_secrets(scram):
    shown = show_profile(scram)
    assert shown["kafka"]["sasl.password"] == "**** (from ${ALICE_PW})"
    assert shown["kafka"]["sasl.username"] == "alice" and shown["profile"] == "prod"
