"""Every Kafka and registry client takes the active profile's settings from mlstream/kafka/clients.py.

The scan reads the source with ``ast``: a client built any other way (a ``Producer({...})`` of
its own, a Faust app without the profile's credentials, a Spark Kafka source without its
security options) fails it, so a secured cluster reaches every client or none is merged.
"""

from __future__ import annotations

import ast
import dataclasses
import ssl
import textwrap
from pathlib import Path

import faust
import pytest

from mlstream.errors import UserError
from mlstream.kafka import clients
from mlstream.settings import REPO_ROOT, Settings
from tests.unit.test_layers import FLOORS

FACTORY = REPO_ROOT / "mlstream" / "kafka" / "clients.py"
#: Classes that open a connection to Kafka or the registry; only the factory may call them.
CLIENT_CLASSES = {"Producer", "Consumer", "AdminClient", "SchemaRegistryClient", "AIOKafkaProducer", "AIOKafkaClient"}
#: Built elsewhere, but only with the factory's connection arguments unpacked into them: class -> factory function.
WITH_FACTORY_ARGUMENTS = {"AIOKafkaConsumer": {"aiokafka_options"}, "App": {"faust_options"}}
#: Spark's Kafka source and sink options come from these (spark_jobs.avro.kafka_options adds the topic).
SPARK_OPTIONS = {"spark_kafka_options", "kafka_options"}


def called_name(call: ast.Call) -> str:
    func = call.func
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""


def unpacks_one_of(call: ast.Call, names: set[str]) -> bool:
    return any(k.arg is None and isinstance(k.value, ast.Call) and called_name(k.value) in names
               for k in call.keywords)


def client_violations(source: str) -> list[str]:
    """What in ``source`` builds a Kafka or registry client other than through the factory, by line."""
    tree = ast.parse(source)
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and node.value in ("bootstrap.servers", "kafka.bootstrap.servers"):
            found.append(f"line {node.lineno}: {node.value!r} set by hand")
        if not isinstance(node, ast.Call):
            continue
        name = called_name(node)
        if name in CLIENT_CLASSES:
            found.append(f"line {node.lineno}: {name}(...) built directly")
        elif name in WITH_FACTORY_ARGUMENTS and not unpacks_one_of(node, WITH_FACTORY_ARGUMENTS[name]):
            wanted = "/".join(WITH_FACTORY_ARGUMENTS[name])
            found.append(f"line {node.lineno}: {name}(...) without **{wanted}(settings)")
        elif isinstance(node.func, ast.Name) and name == "Application" and not any(  # Quix's, not web.Application
                isinstance(n, ast.Call) and called_name(n) == "kafka_config" for n in ast.walk(node)):
            found.append(f"line {node.lineno}: Quix Application(...) without kafka_config(settings)")
        elif name == "format" and [getattr(a, "value", None) for a in node.args] == ["kafka"]:
            chain, options = node, False
            while (parent := parents.get(chain)) is not None and isinstance(parent, (ast.Attribute, ast.Call)):
                options |= isinstance(parent, ast.Call) and called_name(parent) == "options" and \
                    unpacks_one_of(parent, SPARK_OPTIONS)
                chain = parent
            if not options:
                found.append(f"line {node.lineno}: Spark Kafka source or sink without .options(**kafka_options(...))")
    return found


def test_every_client_in_the_code_base_is_built_through_the_factory():
    violations = {}
    for package in FLOORS:
        for path in sorted((REPO_ROOT / package).rglob("*.py")):
            if path != FACTORY and (found := client_violations(path.read_text())):
                violations[str(path.relative_to(REPO_ROOT))] = found
    assert violations == {}


@pytest.mark.parametrize("source, expected", [
    ('Producer({"bootstrap.servers": s.bootstrap_servers})', ["line 1: 'bootstrap.servers' set by hand",
                                                             "line 1: Producer(...) built directly"]),
    ("confluent_kafka.admin.AdminClient(config)", ["line 1: AdminClient(...) built directly"]),
    ("SchemaRegistryClient({'url': u})", ["line 1: SchemaRegistryClient(...) built directly"]),
    ("faust.App('id', broker='kafka://x')", ["line 1: App(...) without **faust_options(settings)"]),
    ("AIOKafkaConsumer(bootstrap_servers=b)", ["line 1: AIOKafkaConsumer(...) without **aiokafka_options(settings)"]),
    ("spark.read.format('kafka').option('subscribe', t).load()",
     ["line 1: Spark Kafka source or sink without .options(**kafka_options(...))"]),
    ("Application(broker_address=s.bootstrap_servers)",
     ["line 1: Quix Application(...) without kafka_config(settings)"]),
    # the ways the code base does it
    ("clients.producer(settings, **{'linger.ms': 5})", []),
    ("faust.App('id', **clients.faust_options(settings), web_port=1)", []),
    ("AIOKafkaConsumer(**aiokafka_options(settings), group_id=None)", []),
    ("spark.readStream.format('kafka').options(**kafka_options(settings, t)).load()", []),
    ("Application(broker_address=ConnectionConfig.from_librdkafka_dict(kafka_config(settings)))", []),
])
def test_the_scan_tells_a_client_built_by_hand(source, expected):
    assert sorted(client_violations(textwrap.dedent(source))) == sorted(expected)


@pytest.fixture
def secured(tmp_path: Path) -> Settings:
    """A SASL_SSL SCRAM profile with its password in a file (the system's CAs)."""
    (tmp_path / "pw").write_text("s3cret\n")
    return dataclasses.replace(
        Settings.from_env({}), bootstrap_servers="broker:9093", schema_registry_url="https://sr:8081",
        kafka_security=(("security.protocol", "SASL_SSL"), ("sasl.mechanism", "SCRAM-SHA-512"),
                        ("sasl.username", "alice"), ("sasl.password", f"file:{tmp_path / 'pw'}")),
        registry_security=(("basic.auth.user.info", "${SR_AUTH}"),))


def test_kafka_config_resolves_secrets_and_takes_overrides_on_top(secured):
    assert clients.kafka_config(secured, **{"group.id": "g", "sasl.username": "bob"}) == {
        "bootstrap.servers": "broker:9093", "security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "bob", "sasl.password": "s3cret", "group.id": "g"}


def test_the_registry_client_takes_the_profile_keys(secured, monkeypatch):
    monkeypatch.setenv("SR_AUTH", "key:secret")
    assert clients.registry_config(secured) == {"url": "https://sr:8081", "timeout": clients.REGISTRY_TIMEOUT_S,
                                                "basic.auth.user.info": "key:secret"}
    monkeypatch.delenv("SR_AUTH")
    with pytest.raises(UserError, match=r"basic.auth.user.info refers to \$\{SR_AUTH\}, which is not set"):
        clients.registry_client(secured)


def test_faust_and_aiokafka_get_scram_over_tls(secured):
    credentials = clients.faust_credentials(secured)
    assert isinstance(credentials, faust.SASLCredentials)
    assert (credentials.username, credentials.password, credentials.mechanism.value) == \
        ("alice", "s3cret", "SCRAM-SHA-512")
    options = clients.aiokafka_options(secured)
    assert options["security_protocol"] == "SASL_SSL" and options["bootstrap_servers"] == ["broker:9093"]
    assert isinstance(options["ssl_context"], ssl.SSLContext) and options["ssl_context"].check_hostname
    plain = Settings.from_env({})
    assert clients.faust_options(plain) == {} and clients.aiokafka_options(plain)["security_protocol"] == "PLAINTEXT"


def test_spark_gets_the_java_clients_keys(secured):
    options = clients.spark_kafka_options(secured)
    assert options["kafka.bootstrap.servers"] == "broker:9093"
    assert options["kafka.security.protocol"] == "SASL_SSL"
    assert options["kafka.sasl.mechanism"] == "SCRAM-SHA-512"
    assert options["kafka.sasl.jaas.config"] == ('org.apache.kafka.common.security.scram.ScramLoginModule required '
                                                 'username="alice" password="s3cret";')
    with_ca = dataclasses.replace(secured, kafka_security=secured.kafka_security + (("ssl.ca.location", "/ca.pem"),))
    assert clients.spark_kafka_options(with_ca)["kafka.ssl.truststore.location"] == "/ca.pem"
    assert clients.spark_kafka_options(with_ca)["kafka.ssl.truststore.type"] == "PEM"


def test_a_password_with_quotes_stays_one_jaas_value(secured, tmp_path):
    (tmp_path / "pw").write_text('a"b\\c')
    assert 'password="a\\"b\\\\c";' in clients.spark_kafka_options(secured)["kafka.sasl.jaas.config"]


def test_oauthbearer_needs_its_endpoint_and_client(secured):
    oauth = dataclasses.replace(secured, kafka_security=(("security.protocol", "SASL_SSL"),
                                                         ("sasl.mechanism", "OAUTHBEARER")))
    with pytest.raises(UserError, match="OAUTHBEARER needs sasl.oauthbearer.token.endpoint.url"):
        clients.faust_credentials(oauth)
