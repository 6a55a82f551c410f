"""Who enforces the security policies on a profile's broker, and the plan that makes its ACLs match them.

Shared by ``mlstream security apply`` and ``mlstream demo security``.
"""

from __future__ import annotations

from pathlib import Path

from confluent_kafka.admin import ScramMechanism

from mlstream import config_store
from mlstream.kafka import clients
from mlstream.errors import UserError
from mlstream.profiles import SECURE_LOCAL, SECURE_LOCAL_SUPER_USER, SECURE_LOCAL_USER
from mlstream.security import configs, kafka_acls, passwords
from mlstream.settings import Settings
from tools.local_services import secured
from tools.local_services.state import state_paths


def admin_settings(settings: Settings) -> Settings:
    """Who grants: the secured local broker's super user; on any other profile, the profile's own user."""
    return secured.super_user_settings(settings, state_paths(settings)) if settings.profile == SECURE_LOCAL \
        else settings


def password_folder(settings: Settings) -> Path:
    """Where the passwords of the users ``apply`` adds are kept (0600 files): beside secure-local's own users."""
    if settings.profile == SECURE_LOCAL:
        return secured.secrets_dir(state_paths(settings))
    return settings.state_dir / "security" / "passwords"


def reserved_users(settings: Settings) -> set[str]:
    own = dict(settings.kafka_security).get("sasl.username")
    return ({SECURE_LOCAL_USER, SECURE_LOCAL_SUPER_USER} if settings.profile == SECURE_LOCAL else set()) | \
        ({own} if own and not own.startswith(("${", "file:")) else set())


def make_plan(settings: Settings, store: config_store.ConfigStore, admin,
              namespace: tuple[str, ...] = ()) -> tuple[kafka_acls.Plan, dict]:
    """The plan for the stored directory and Kafka policies against the broker, and which versions it is of.

    ``namespace``: the resource name prefixes the policies own (a generated project's topics and groups);
    the users' ACLs on anything else (another project's) are neither kept nor deleted. Empty: every ACL.
    """
    directory = configs.load_directory(store)
    if directory is None:
        raise UserError(f"no directory stored: 'mlstream config put {configs.DIRECTORY} FILE' first "
                        f"(see docs/security.md)")
    policies = configs.load_policies(store, "security.kafka", directory.value)
    owned = configs.every_user(store)
    current = [acl for acl in kafka_acls.current_acls(admin, [kafka_acls.PRINCIPAL_PREFIX + u for u in owned])
               if not namespace or acl.name.startswith(namespace)]
    planned = kafka_acls.plan(policies.value if policies else None, directory.value, owned, current,
                              kafka_acls.scram_users(admin), reserved_users(settings))
    return planned, {"directory": directory.version, "kafka_policies": policies.version if policies else None}


def scram_mechanism(settings: Settings) -> ScramMechanism:
    mechanism = dict(settings.kafka_security).get("sasl.mechanism", "SCRAM-SHA-512").upper()
    return ScramMechanism.SCRAM_SHA_256 if mechanism == "SCRAM-SHA-256" else ScramMechanism.SCRAM_SHA_512


def apply_policies(settings: Settings, store: config_store.ConfigStore,
                   namespace: tuple[str, ...] = ()) -> kafka_acls.Plan:
    """Plan and carry out: the stored directory's users and the stored Kafka policies' ACLs on the broker."""
    admin = clients.admin(admin_settings(settings))
    planned, _ = make_plan(settings, store, admin, namespace)
    folder = password_folder(settings)
    kafka_acls.apply(admin, planned, lambda user: passwords.stored_password(folder, user), scram_mechanism(settings))
    return planned
