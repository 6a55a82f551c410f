"""Every Kafka and Schema Registry client of the project, built from the active profile's settings in one place.

confluent-kafka's producers, consumers and admin clients take :func:`kafka_config`; the
Faust apps and aiokafka take :func:`faust_credentials` (Faust's own mapping turns them into
aiokafka's arguments, :func:`aiokafka_options`); Spark's Kafka source and sink take
:func:`spark_kafka_options`; the registry client is :func:`registry_client`. Secrets
(``${VAR}``, ``file:PATH``) are read here, when a client is built, and nowhere else.
``tests/unit/mlstream/kafka/test_clients.py`` fails if any client in the code base is
built another way.

>>> from mlstream.settings import Settings
>>> settings = Settings.from_env({}, profile="local")
>>> kafka_config(settings, **{"group.id": "g"}) == {"bootstrap.servers": "localhost:9092", "group.id": "g"}
True
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections import deque
from collections.abc import Mapping

import requests
from confluent_kafka import Consumer, KafkaError, Producer
from confluent_kafka.admin import AdminClient
from confluent_kafka.schema_registry import SchemaRegistryClient

from mlstream.errors import UserError
from mlstream.profiles import resolve_secret
from mlstream.settings import Settings

#: Seconds before a registry request gives up (the client's default is to wait forever).
REGISTRY_TIMEOUT_S = 30

#: librdkafka's own log lines (a refused connection, retried every second) go here, not to stderr:
#: the CLI shows them with --verbose; the errors the clients raise say what went wrong.
LIBRDKAFKA_LOG = logging.getLogger("librdkafka")
LIBRDKAFKA_LOG.addHandler(logging.NullHandler())  # a library's logger: silent unless the program configures logging


def kafka_security(settings: Settings) -> dict[str, str]:
    """The profile's librdkafka security keys, secrets read."""
    return {key: resolve_secret(key, value) for key, value in settings.kafka_security}


def kafka_config(settings: Settings, **overrides) -> dict[str, str]:
    """librdkafka's configuration for the active profile: bootstrap servers, security, then ``overrides``.

    Overrides are dotted librdkafka keys: ``kafka_config(settings, **{"group.id": g})``.
    """
    return {"bootstrap.servers": settings.bootstrap_servers, **kafka_security(settings), **overrides}


#: What librdkafka reported lately through ``error_cb`` (a refused login, a failed TLS handshake, a refused
#: connection), newest last: a timeout says only that no answer came, these say why (mlstream.kafka.problems).
RECENT_ERRORS: deque[KafkaError] = deque(maxlen=20)


def _note_error(error: KafkaError) -> None:
    RECENT_ERRORS.append(error)
    LIBRDKAFKA_LOG.info("client error: %s", error.str())


def _with_logger(config: dict) -> dict:
    return {"logger": LIBRDKAFKA_LOG, "error_cb": _note_error, **config}


def producer(settings: Settings, **overrides) -> Producer:
    return Producer(_with_logger(kafka_config(settings, **overrides)))


def consumer(settings: Settings, **overrides) -> Consumer:
    return Consumer(_with_logger(kafka_config(settings, **overrides)))


def admin(settings: Settings, **overrides) -> AdminClient:
    return AdminClient(_with_logger(kafka_config(settings, **overrides)))


def registry_config(settings: Settings) -> dict[str, str]:
    """confluent-kafka's registry client configuration: the URL, a timeout, the profile's auth and TLS keys."""
    secured = {key: resolve_secret(key, value) for key, value in settings.registry_security}
    return {"url": settings.schema_registry_url, "timeout": REGISTRY_TIMEOUT_S, **secured}


def registry_client(settings: Settings, retries: bool = True) -> SchemaRegistryClient:
    """The registry client of the active profile.

    ``retries=False`` is for callers that retry on their own, off their event loop (the stream
    apps, the metrics sink): a request to a registry that is down then fails in a millisecond,
    instead of after the client's own three retries (about 2.5 s, the event loop blocked meanwhile).
    """
    return SchemaRegistryClient(registry_config(settings) | ({} if retries else {"max.retries": 0}))


def ssl_context(security: Mapping[str, str]) -> ssl.SSLContext:
    """A TLS context from librdkafka's ``ssl.*`` keys: the CA, a client certificate and key (mTLS), host checking."""
    context = ssl.create_default_context(cafile=security.get("ssl.ca.location") or None)
    if security.get("ssl.certificate.location"):
        context.load_cert_chain(security["ssl.certificate.location"], security.get("ssl.key.location"),
                                security.get("ssl.key.password"))
    if security.get("ssl.endpoint.identification.algorithm", "https").lower() == "none":
        context.check_hostname = False
    return context


def faust_credentials(settings: Settings):
    """Faust's ``broker_credentials`` for the active profile; None on PLAINTEXT."""
    # Faust imported here, not at the top: the Quix Streams contender's environment builds its clients
    # from this module and has no Faust.
    import faust
    from faust.types.auth import SASLMechanism

    security = kafka_security(settings)
    protocol = security.get("security.protocol", "PLAINTEXT").upper()
    if protocol == "PLAINTEXT":
        return None
    context = ssl_context(security) if protocol.endswith("SSL") else None
    if protocol == "SSL":
        return faust.SSLCredentials(context)
    mechanism = (security.get("sasl.mechanism") or security.get("sasl.mechanisms", "")).upper()
    if mechanism == "GSSAPI":
        # aiokafka logs in from the Kerberos ticket cache (kinit with the keytab first); librdkafka runs kinit itself.
        return faust.GSSAPICredentials(kerberos_service_name=security.get("sasl.kerberos.service.name", "kafka"),
                                       ssl_context=context)
    if mechanism == "OAUTHBEARER":
        return faust.OAuthCredentials(oauth_cb=ClientCredentialsTokens(security), ssl_context=context)
    return faust.SASLCredentials(username=security.get("sasl.username"), password=security.get("sasl.password"),
                                 mechanism=SASLMechanism(mechanism), ssl_context=context)


def faust_options(settings: Settings) -> dict:
    """What :func:`mlstream.streaming.faust_app.new_app` gives ``faust.App`` of the connection."""
    credentials = faust_credentials(settings)
    return {"broker_credentials": credentials} if credentials is not None else {}


def aiokafka_options(settings: Settings) -> dict:
    """aiokafka's connection arguments (``bootstrap_servers``, security), as Faust's own driver maps them."""
    from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth  # see faust_credentials

    return {"bootstrap_servers": settings.bootstrap_servers.split(","),
            **credentials_to_aiokafka_auth(faust_credentials(settings))}


class ClientCredentialsTokens:
    """aiokafka's token provider for OAUTHBEARER: OIDC client credentials, as librdkafka's ``sasl.oauthbearer.*``."""

    def __init__(self, security: Mapping[str, str]):
        missing = [k for k in ("sasl.oauthbearer.token.endpoint.url", "sasl.oauthbearer.client.id",
                               "sasl.oauthbearer.client.secret") if not security.get(k)]
        if missing:
            raise UserError(f"sasl.mechanism OAUTHBEARER needs {', '.join(missing)} in the profile's kafka table")
        self.security = security

    async def token(self) -> str:
        return await asyncio.get_running_loop().run_in_executor(None, self._fetch)

    def _fetch(self) -> str:
        form = {"grant_type": "client_credentials"}
        if self.security.get("sasl.oauthbearer.scope"):
            form["scope"] = self.security["sasl.oauthbearer.scope"]
        response = requests.post(self.security["sasl.oauthbearer.token.endpoint.url"], data=form, timeout=30,
                                 auth=(self.security["sasl.oauthbearer.client.id"],
                                       self.security["sasl.oauthbearer.client.secret"]))
        if not response.ok:
            raise UserError(f"the OAUTHBEARER token endpoint answered {response.status_code}: check "
                            "sasl.oauthbearer.client.id and client.secret")
        return response.json()["access_token"]

    def extensions(self) -> dict:
        return {}


_JAAS_MODULES = {
    "PLAIN": "org.apache.kafka.common.security.plain.PlainLoginModule",
    "SCRAM-SHA-256": "org.apache.kafka.common.security.scram.ScramLoginModule",
    "SCRAM-SHA-512": "org.apache.kafka.common.security.scram.ScramLoginModule",
}


def spark_kafka_options(settings: Settings) -> dict[str, str]:
    """Spark's Kafka source and sink options (the Java client's keys, ``kafka.``-prefixed) for the active profile."""
    security = kafka_security(settings)
    options = {"kafka.bootstrap.servers": settings.bootstrap_servers}
    protocol = security.get("security.protocol", "PLAINTEXT").upper()
    options["kafka.security.protocol"] = protocol
    if protocol.endswith("SSL"):
        if security.get("ssl.ca.location"):
            options |= {"kafka.ssl.truststore.type": "PEM",
                        "kafka.ssl.truststore.location": security["ssl.ca.location"]}
        if security.get("ssl.certificate.location"):
            options |= {"kafka.ssl.keystore.type": "PEM",
                        "kafka.ssl.keystore.certificate.chain": _read(security["ssl.certificate.location"]),
                        "kafka.ssl.keystore.key": _read(security["ssl.key.location"])}
            if security.get("ssl.key.password"):
                options["kafka.ssl.key.password"] = security["ssl.key.password"]
        if security.get("ssl.endpoint.identification.algorithm", "https").lower() == "none":
            options["kafka.ssl.endpoint.identification.algorithm"] = ""
    if protocol.startswith("SASL"):
        mechanism = (security.get("sasl.mechanism") or security.get("sasl.mechanisms", "")).upper()
        options["kafka.sasl.mechanism"] = mechanism
        options["kafka.sasl.jaas.config"] = _jaas(mechanism, security)
        if mechanism == "OAUTHBEARER":
            options["kafka.sasl.login.callback.handler.class"] = \
                "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginCallbackHandler"
            options["kafka.sasl.oauthbearer.token.endpoint.url"] = security["sasl.oauthbearer.token.endpoint.url"]
        if mechanism == "GSSAPI":
            options["kafka.sasl.kerberos.service.name"] = security.get("sasl.kerberos.service.name", "kafka")
    return options


def _jaas(mechanism: str, security: Mapping[str, str]) -> str:
    def quoted(value: str) -> str:
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'

    if mechanism in _JAAS_MODULES:
        return (f"{_JAAS_MODULES[mechanism]} required username={quoted(security.get('sasl.username', ''))} "
                f"password={quoted(security.get('sasl.password', ''))};")
    if mechanism == "OAUTHBEARER":
        scope = f" scope={quoted(security['sasl.oauthbearer.scope'])}" if security.get("sasl.oauthbearer.scope") else ""
        return ("org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required "
                f"clientId={quoted(security.get('sasl.oauthbearer.client.id', ''))} "
                f"clientSecret={quoted(security.get('sasl.oauthbearer.client.secret', ''))}{scope};")
    if mechanism == "GSSAPI":
        return ("com.sun.security.auth.module.Krb5LoginModule required useKeyTab=true storeKey=true "
                f"keyTab={quoted(security.get('sasl.kerberos.keytab', ''))} "
                f"principal={quoted(security.get('sasl.kerberos.principal', ''))};")
    raise UserError(f"sasl.mechanism {mechanism!r} has no Spark (Java client) equivalent here")


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as file:
            return file.read()
    except OSError as err:
        raise UserError(f"cannot read {path} for Spark's Kafka client: {err.strerror}") from None
