"""The secure-local broker's config: a SASL_SSL listener on loopback, ACLs enforced, users at format time."""

from __future__ import annotations

import stat

from confluent_kafka.admin import AclOperation, ResourcePatternType, ResourceType

from mlstream.settings import Settings
from tests.unit.tools.test_local_services import parse_properties
from tools.local_services import kafka, secured
from tools.local_services.state import state_paths


def secure_settings(tmp_path) -> Settings:
    return Settings.from_env({"MLSTREAM_STATE_DIR": str(tmp_path), "MLSTREAM_SECURE_LOCAL_KAFKA_PORT": "19294",
                              "MLSTREAM_SECURE_LOCAL_KAFKA_CONTROLLER_PORT": "19295"}, profile="secure-local")


def test_the_node_listens_sasl_ssl_on_loopback_with_acls_enforced(tmp_path):
    settings = secure_settings(tmp_path)
    rendered = parse_properties(kafka.render_kafka_properties(settings, kafka.KAFKA_SERVER_PROPERTIES.read_text()))
    assert rendered["listeners"] == "SASL_SSL://127.0.0.1:19294,CONTROLLER://127.0.0.1:19295"
    assert rendered["listener.security.protocol.map"] == "CONTROLLER:SASL_PLAINTEXT,SASL_SSL:SASL_SSL"
    assert rendered["sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    assert rendered["authorizer.class.name"] == "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
    assert rendered["allow.everyone.if.no.acl.found"] == "false"
    assert rendered["super.users"] == "User:admin"
    assert rendered["auto.create.topics.enable"] == "false"
    assert rendered["log.dirs"] == str(tmp_path / "secure-local" / "kafka-data")


def test_users_exist_from_the_format_and_their_passwords_are_private(tmp_path):
    paths = state_paths(secure_settings(tmp_path))
    arguments = secured.scram_format_arguments(paths)
    assert arguments[0::2] == ["--add-scram", "--add-scram"]
    assert [a.split("[name=")[1].split(",")[0] for a in arguments[1::2]] == ["admin", "mlstream"]
    for name in ("admin", "mlstream"):
        path = secured.password_file(paths, name)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600 and len(path.read_text()) >= 24
    assert secured.scram_format_arguments(paths) == arguments  # made once, the same on every start


def test_the_client_user_gets_the_projects_topics_and_groups_only(tmp_path):
    settings = secure_settings(tmp_path)
    bindings = {(b.restype, b.name, b.resource_pattern_type, b.operation) for b in secured.app_acls(settings, "u")}
    assert bindings == {
        (ResourceType.TOPIC, "mlstream.", ResourcePatternType.PREFIXED, AclOperation.ALL),
        (ResourceType.TOPIC, "mlstream-scorer", ResourcePatternType.PREFIXED, AclOperation.ALL),
        (ResourceType.TOPIC, "ATLAS_HOOK", ResourcePatternType.LITERAL, AclOperation.ALL),
        (ResourceType.GROUP, "*", ResourcePatternType.LITERAL, AclOperation.ALL),
        (ResourceType.TRANSACTIONAL_ID, "mlstream-scorer", ResourcePatternType.PREFIXED, AclOperation.ALL),
    }
    assert {b.principal for b in secured.app_acls(settings, "u")} == {"User:u"}
