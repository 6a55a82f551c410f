"""Connection failures a user can act on, each in one line: what failed, where, under which profile, what to do.

:func:`explain` turns an exception from a Kafka or registry client into that line (None for
anything else: a bug keeps its traceback). The CLI's one handler uses it, and so do the
probes of ``mlstream status`` and ``mlstream app``'s start (:func:`check_kafka`,
:func:`check_registry`).

>>> from mlstream.settings import Settings
>>> settings = Settings.from_env({}, profile="local")
>>> print(explain(KafkaException(KafkaError(KafkaError._TRANSPORT)), settings))
no Kafka at localhost:9092 (profile local): start it with `mlstream up` or check bootstrap.servers
>>> print(denied(settings, "WRITE", "topic", "mlstream.records"))
authorization denied: the principal of profile local (PLAINTEXT, no user) may not WRITE topic mlstream.records: grant it an ACL, or use a profile whose user has one
"""

from __future__ import annotations

import time

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.schema_registry.error import SchemaRegistryError

from mlstream.errors import AccessDenied, UserError
from mlstream.kafka import clients
from mlstream.settings import Settings

_UNREACHABLE = {KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN, KafkaError._RESOLVE, KafkaError._TIMED_OUT,
                KafkaError._MSG_TIMED_OUT, KafkaError.REQUEST_TIMED_OUT}
_AUTHENTICATION = {KafkaError._AUTHENTICATION, KafkaError.SASL_AUTHENTICATION_FAILED,
                   KafkaError.UNSUPPORTED_SASL_MECHANISM, KafkaError.ILLEGAL_SASL_STATE}
_AUTHORIZATION = {KafkaError.TOPIC_AUTHORIZATION_FAILED: "topic", KafkaError.GROUP_AUTHORIZATION_FAILED: "group",
                  KafkaError.CLUSTER_AUTHORIZATION_FAILED: "cluster",
                  KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED: "transactional id"}
_MISSING = {KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_TOPIC, KafkaError._UNKNOWN_PARTITION}
#: The registry's error code for a subject it does not have (Confluent's REST API, which Apicurio's ccompat speaks).
SUBJECT_NOT_FOUND = 40401


class ConnectionProblem(UserError):
    """A broker or registry that cannot be reached, refuses who we are, or denies what we asked."""


def principal(settings: Settings) -> str:
    security = dict(settings.kafka_security)
    protocol = security.get("security.protocol", "PLAINTEXT").upper()
    user = security.get("sasl.username")
    return f"User:{user}" if user else f"the principal of profile {settings.profile} ({protocol}, no user)"


def unreachable(settings: Settings) -> str:
    return (f"no Kafka at {settings.bootstrap_servers} (profile {settings.profile}): start it with `mlstream up` "
            "or check bootstrap.servers")


def authentication_failed(settings: Settings, detail: str = "") -> str:
    security = dict(settings.kafka_security)
    who = f"user {security['sasl.username']!r}" if security.get("sasl.username") else "this client"
    return (f"authentication failed at {settings.bootstrap_servers} for {who} (profile {settings.profile}, "
            f"{security.get('security.protocol', 'PLAINTEXT')} {security.get('sasl.mechanism', '')}".rstrip()
            + f"): check sasl.username and sasl.password{f' ({detail})' if detail else ''}")


def denied(settings: Settings, operation: str, resource_type: str, resource: str) -> str:
    return (f"authorization denied: {principal(settings)} may not {operation} {resource_type} {resource}: grant it "
            "an ACL, or use a profile whose user has one")


def tls_failed(settings: Settings, detail: str) -> str:
    ca = dict(settings.kafka_security).get("ssl.ca.location", "the system's CAs")
    return (f"TLS handshake with {settings.bootstrap_servers} failed (profile {settings.profile}, CA {ca}): "
            f"check ssl.ca.location and the broker's certificate ({detail})")


def explain_kafka_error(error: KafkaError, settings: Settings, operation: str = "", resource: str = "") -> str | None:
    code = error.code()
    text = error.str()
    if code in _AUTHORIZATION or "authorization failed" in text.lower():
        resource_type = _AUTHORIZATION.get(code, "resource")
        if resource_type == "cluster" or "idempotence" in text.lower():  # an idempotent producer's first request
            return denied(settings, operation or "IDEMPOTENT_WRITE (or WRITE on any topic)", "cluster",
                          resource or "kafka-cluster")
        return denied(settings, operation or "use", resource_type, resource or "(not named)")
    if code in _AUTHENTICATION or "authentication" in text.lower():
        return authentication_failed(settings, text)
    if code == KafkaError._SSL or "ssl handshake" in text.lower():
        return tls_failed(settings, text)
    if code in _UNREACHABLE:
        return unreachable(settings)
    if code == KafkaError.SECURITY_DISABLED:  # ACLs asked of a broker without an authorizer (the plain local one)
        return (f"the broker at {settings.bootstrap_servers} (profile {settings.profile}) has no authorizer, so no "
                f"ACLs: use a secured cluster's profile, e.g. `mlstream --profile secure-local ...`")
    if code in _MISSING:
        return (f"topic {resource or '(not named)'} does not exist on {settings.bootstrap_servers} "
                f"(profile {settings.profile}): run `mlstream init`")
    return None


def telling_recent_error(settings: Settings) -> str | None:
    """Why the clients got no answer, if librdkafka said so lately: a refused login or certificate, a denial."""
    for error in reversed(clients.RECENT_ERRORS):
        reason = explain_kafka_error(error, settings)
        if reason and not reason.startswith("no Kafka"):
            return reason
    return None


def explain(err: BaseException, settings: Settings | None) -> str | None:
    """One line saying what to do about ``err``, or None when it is not a user's to fix (a bug)."""
    if isinstance(err, AccessDenied) and settings is not None:
        return denied(settings, err.operation, err.resource_type, err.resource)
    if isinstance(err, UserError):
        return str(err)
    if settings is None:
        return None
    if isinstance(err, KafkaException) and err.args and isinstance(err.args[0], KafkaError):
        reason = explain_kafka_error(err.args[0], settings)
        if reason is None or reason.startswith("no Kafka"):  # a timeout or a fatal error: librdkafka may know why
            reason = telling_recent_error(settings) or reason
        return reason
    if isinstance(err, SchemaRegistryError):
        return explain_registry_status(settings, err.http_status_code, err.error_code, err.error_message)
    if type(err).__module__.startswith("httpx") or isinstance(err, ConnectionError):
        return (f"no Schema Registry at {settings.schema_registry_url} (profile {settings.profile}): start it with "
                f"`mlstream up` or check schema_registry_url ({type(err).__name__}: {err})")
    return None


def explain_registry_status(settings: Settings, status: int, code: int, message: str) -> str | None:
    where = f"the Schema Registry at {settings.schema_registry_url} (profile {settings.profile})"
    if status in (401, 403):
        return (f"{where} refused the credentials ({status}): check the profile's schema_registry "
                "basic.auth.user.info or bearer.auth.token")
    if code == SUBJECT_NOT_FOUND:
        return f"{where} has no such subject ({message}): run `mlstream init`"
    return None


def check_kafka(settings: Settings, timeout_s: float = 10.0) -> int:
    """Ask the brokers for their metadata; return how many answered, or raise a :class:`ConnectionProblem`.

    Asks again every second until ``timeout_s``, and stops early when librdkafka has said why
    no answer comes (a refused login or certificate arrives within a second; a timeout would not).
    """
    clients.RECENT_ERRORS.clear()
    admin = clients.admin(settings)
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return len(admin.list_topics(timeout=min(1.0, max(0.1, deadline - time.monotonic()))).brokers)
        except KafkaException as err:
            admin.poll(0)  # serves error_cb: the reasons librdkafka has queued
            reason = telling_recent_error(settings)
            if reason is not None:
                raise ConnectionProblem(reason) from None
            if time.monotonic() >= deadline:
                raise ConnectionProblem(explain(err, settings) or unreachable(settings)) from None


def check_registry(settings: Settings) -> int:
    """List the registry's subjects; return how many, or raise a :class:`ConnectionProblem`."""
    try:
        return len(clients.registry_client(settings).get_subjects())
    except Exception as err:
        reason = explain(err, settings)
        if reason is None:
            raise
        raise ConnectionProblem(reason) from None
