"""The secured local broker (profile ``secure-local``): SASL_SSL with SCRAM-SHA-512, a self-signed CA, ACLs enforced.

Everything lives under the profile's services dir, beside its data: ``tls/`` (a CA made with
openssl, the broker's certificate for ``localhost`` and 127.0.0.1 in a PKCS#12 keystore,
``ca.pem`` for the clients) and ``secrets/`` (random passwords, mode 0600: the super user's,
the client user's, the keystore's). The layout follows ``../shared/notes/security.md``, a
KRaft combined node all four clients (confluent-kafka, aiokafka under Faust, Spark's Java
client, the Admin API) accepted:

- clients: ``SASL_SSL://127.0.0.1:PORT``, SCRAM-SHA-512; the controller listener is
  SASL_PLAINTEXT with PLAIN, on loopback, for the broker's own use;
- ``StandardAuthorizer``, ``allow.everyone.if.no.acl.found=false``, super user ``admin``
  (the broker itself, and whoever grants ACLs and adds users);
- SCRAM users exist from the first start because the storage is formatted with them
  (``--add-scram``); later ones are added through the Admin API (:func:`add_scram_user`);
- the client user ``mlstream`` gets ACLs on the project's topics (PREFIXED on the topic prefix
  and the app id, LITERAL on the Atlas hook topic), on consumer groups and on the data plane's
  transactional ids (PREFIXED on the app id) (:func:`grant_app_acls`).

The registry (Apicurio) stays plain HTTP on loopback: its basic auth is OIDC client
credentials against an identity server (Keycloak), which this machine does not have.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
from pathlib import Path

from confluent_kafka.admin import (AclBinding, AclOperation, AclPermissionType, ResourcePatternType, ResourceType,
                                   ScramMechanism, UserScramCredentialUpsertion, ScramCredentialInfo)

from mlstream import profiles
from mlstream.kafka import clients
from mlstream.security import passwords
from mlstream.settings import Settings
from tools.local_services.state import LocalServicesError, Progress, StatePaths

MECHANISM = "SCRAM-SHA-512"
SUPER_USER = profiles.SECURE_LOCAL_SUPER_USER
CLIENT_USER = profiles.SECURE_LOCAL_USER
CERT_DAYS = 825


def is_secured(settings: Settings) -> bool:
    return settings.profile == profiles.SECURE_LOCAL


def tls_dir(paths: StatePaths) -> Path:
    return paths.root / "tls"


def secrets_dir(paths: StatePaths) -> Path:
    return paths.root / "secrets"


def password_file(paths: StatePaths, name: str) -> Path:
    return passwords.password_file(secrets_dir(paths), name)


def stored_password(paths: StatePaths, name: str) -> str:
    """The stored password of ``name``, made (random, 0600) the first time it is asked for."""
    return passwords.stored_password(secrets_dir(paths), name)


def ensure_certificates(paths: StatePaths, progress: Progress) -> None:
    """A self-signed CA and a broker certificate for localhost / 127.0.0.1 in a PKCS#12 keystore, made once."""
    tls = tls_dir(paths)
    keystore = tls / "broker.p12"
    if keystore.exists():
        return
    progress(f"Making a self-signed CA and the broker's certificate in {tls}")
    tls.mkdir(parents=True, exist_ok=True, mode=0o700)
    store_password = stored_password(paths, "keystore")
    (tls / "san.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    steps = [
        ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days",
         str(CERT_DAYS), "-subj", "/CN=mlstream secure-local CA"],
        ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "broker.key", "-out", "broker.csr", "-subj",
         "/CN=localhost"],
        ["x509", "-req", "-in", "broker.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out",
         "broker.pem", "-days", str(CERT_DAYS), "-extfile", "san.ext"],
        ["pkcs12", "-export", "-in", "broker.pem", "-inkey", "broker.key", "-certfile", "ca.pem", "-name", "broker",
         "-out", "broker.p12.tmp", "-passout", "env:MLSTREAM_KEYSTORE_PASSWORD"],
    ]
    for step in steps:
        try:
            done = subprocess.run(["openssl", *step], cwd=tls, capture_output=True, text=True, timeout=60,
                                  env=os.environ | {"MLSTREAM_KEYSTORE_PASSWORD": store_password})
        except FileNotFoundError:
            raise LocalServicesError("the secured broker's certificates are made with openssl, which is not "
                                     "installed: apt-get install openssl") from None
        if done.returncode != 0:
            raise LocalServicesError(f"openssl {step[0]} failed making the broker's certificate in {tls}:\n"
                                     + done.stderr.strip())
    (tls / "broker.p12.tmp").rename(keystore)  # last: a keystore that exists is a complete one
    for private in ("ca.key", "broker.key", "broker.p12"):
        (tls / private).chmod(0o600)


def secured_properties(settings: Settings, paths: StatePaths) -> dict[str, str]:
    """server.properties values of the secured node (they come after, so override, the plain base file's)."""
    admin_password = stored_password(paths, SUPER_USER)
    store_password = stored_password(paths, "keystore")
    jaas_scram = (f'org.apache.kafka.common.security.scram.ScramLoginModule required username="{SUPER_USER}" '
                  f'password="{admin_password}";')
    jaas_plain = (f'org.apache.kafka.common.security.plain.PlainLoginModule required username="{SUPER_USER}" '
                  f'password="{admin_password}" user_{SUPER_USER}="{admin_password}";')
    return {
        "listeners": f"SASL_SSL://127.0.0.1:{settings.kafka_port},"
                     f"CONTROLLER://127.0.0.1:{settings.kafka_controller_port}",
        "advertised.listeners": f"SASL_SSL://localhost:{settings.kafka_port},"
                                f"CONTROLLER://localhost:{settings.kafka_controller_port}",
        "listener.security.protocol.map": "CONTROLLER:SASL_PLAINTEXT,SASL_SSL:SASL_SSL",
        "inter.broker.listener.name": "SASL_SSL",
        "sasl.enabled.mechanisms": MECHANISM,
        "sasl.mechanism.inter.broker.protocol": MECHANISM,
        "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config": jaas_scram,
        "sasl.mechanism.controller.protocol": "PLAIN",
        "listener.name.controller.sasl.enabled.mechanisms": "PLAIN",
        "listener.name.controller.plain.sasl.jaas.config": jaas_plain,
        "ssl.keystore.type": "PKCS12",
        "ssl.keystore.location": str(tls_dir(paths) / "broker.p12"),
        "ssl.keystore.password": store_password,
        "ssl.key.password": store_password,
        # The broker is a client of its own SASL_SSL listener (inter-broker): it trusts the same CA as the clients.
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(tls_dir(paths) / "ca.pem"),
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users": f"User:{SUPER_USER}",
        "allow.everyone.if.no.acl.found": "false",
        # Topics are made by `mlstream init` and the apps, under ACLs; none appear because a client asked for one.
        "auto.create.topics.enable": "false",
    }


def scram_format_arguments(paths: StatePaths) -> list[str]:
    """StorageTool's ``--add-scram`` for the super user and the client user: they exist from the first start."""
    return [argument for name in (SUPER_USER, CLIENT_USER)
            for argument in ("--add-scram", f"{MECHANISM}=[name={name},password={stored_password(paths, name)}]")]


def super_user_settings(settings: Settings, paths: StatePaths) -> Settings:
    """The same broker as the super user: for granting ACLs and adding users, never for the apps."""
    security = dict(settings.kafka_security) | {"sasl.username": SUPER_USER,
                                                "sasl.password": f"file:{password_file(paths, SUPER_USER)}"}
    return dataclasses.replace(settings, kafka_security=tuple(security.items()))


def add_scram_user(settings: Settings, paths: StatePaths, name: str, password: str) -> None:
    """Add (or change the password of) a SCRAM-SHA-512 user at run time, through the Admin API."""
    admin = clients.admin(super_user_settings(settings, paths))
    upsert = UserScramCredentialUpsertion(name, ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 8192),
                                          password.encode())
    for future in admin.alter_user_scram_credentials([upsert]).values():
        future.result(timeout=30)


def app_acls(settings: Settings, user: str) -> list[AclBinding]:
    """What the project's clients need: every operation on its topics (prefix, app id, hook topic), groups read."""
    def allow(resource: ResourceType, name: str, pattern: ResourcePatternType, operation: AclOperation) -> AclBinding:
        return AclBinding(resource, name, pattern, f"User:{user}", "*", operation, AclPermissionType.ALLOW)

    topics = [(settings.topics.prefix, ResourcePatternType.PREFIXED), (settings.app_id, ResourcePatternType.PREFIXED),
              (settings.topics.atlas_hook, ResourcePatternType.LITERAL)]
    return ([allow(ResourceType.TOPIC, name, pattern, AclOperation.ALL) for name, pattern in topics]
            # Readers make a throwaway group each (mlstream-reader-<uuid>, the benches' ...): any group name.
            + [allow(ResourceType.GROUP, "*", ResourcePatternType.LITERAL, AclOperation.ALL),
               # The scorer's data plane writes in transactions, its transactional ids named after the app id.
               allow(ResourceType.TRANSACTIONAL_ID, settings.app_id, ResourcePatternType.PREFIXED, AclOperation.ALL)])


def grant_app_acls(settings: Settings, paths: StatePaths, user: str = CLIENT_USER) -> int:
    """Grant ``user`` the project's ACLs for ``settings`` (topic prefix, app id); return how many bindings."""
    bindings = app_acls(settings, user)
    admin = clients.admin(super_user_settings(settings, paths))
    for future in admin.create_acls(bindings).values():
        future.result(timeout=30)
    return len(bindings)
