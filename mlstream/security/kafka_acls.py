"""Ranger's Kafka policies as Kafka ACLs: the mapping, and the plan that makes a broker's ACLs match the policies.

The mapping is Ranger's own Kafka authorizer's, read backwards (it maps a Kafka operation to
a Ranger access: READ = consume, WRITE = publish, ALTER = configure, ...):

* access ``consume`` -> READ, ``publish`` -> WRITE, ``configure`` and ``alter`` -> ALTER,
  ``describe`` -> DESCRIBE, ``create``, ``delete``, ``idempotent_write``,
  ``describe_configs``, ``alter_configs``, ``cluster_action`` -> the operation of that name,
  ``kafka_admin`` -> ALL. Ranger's "publish and consume imply describe" is Kafka's own rule
  (READ and WRITE imply DESCRIBE), so no extra binding is made for it;
* resource ``topic`` -> TOPIC, ``consumergroup`` -> GROUP, ``transactionalid`` ->
  TRANSACTIONAL_ID, ``cluster`` -> the cluster (BROKER ``kafka-cluster``);
* a value ``name*`` -> PREFIXED ``name``; ``*`` -> LITERAL ``*`` (every name); other values LITERAL;
* ``policyItems`` -> ALLOW, ``denyPolicyItems`` -> DENY (Kafka's DENY wins over ALLOW, as a
  Ranger deny item does); users -> ``User:NAME``; groups (``public`` included) are expanded
  into the directory's users, as Ranger's usersync does; an ``ip-range`` condition of plain
  addresses -> one binding per host.

What ACLs cannot express is refused with the reason, never dropped: ``isExcludes``,
``allowExceptions`` and ``denyExceptions``, ``isDenyAllElse``, ``validitySchedules``, policy
conditions, roles, CIDR ranges and wildcards in ``ip-range``, a ``*`` or ``?`` inside a name,
and ``delegationtoken`` (which confluent-kafka's admin client cannot bind).

>>> from mlstream.security.directory import Directory
>>> directory = Directory.parse("users: {ann: {groups: [fraud]}, bob: {groups: [fraud]}}", "d")
>>> from mlstream.security.policies import PolicyFile
>>> policies = PolicyFile.parse('{"policies": [{"name": "p", "resources": {"topic": {"values": ["raw.*"]}}, '
...     '"policyItems": [{"groups": ["fraud"], "accesses": [{"type": "consume"}]}]}]}', "k.json", directory)
>>> acls, refusals = policy_acls(policies, directory)
>>> [str(acl) for acl in acls], refusals
(['ALLOW User:ann READ TOPIC PREFIXED raw. from *', 'ALLOW User:bob READ TOPIC PREFIXED raw. from *'], [])
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from confluent_kafka.admin import (AclBinding, AclBindingFilter, AclOperation, AclPermissionType, AdminClient,
                                   ResourcePatternType, ResourceType, ScramCredentialInfo, ScramMechanism,
                                   UserScramCredentialUpsertion)

from mlstream.errors import UserError
from mlstream.security.directory import Directory
from mlstream.security.policies import PolicyFile
from mlstream.yaml_schema import dotted

#: Ranger kafka access -> Kafka ACL operation.
OPERATIONS = {
    "consume": AclOperation.READ, "publish": AclOperation.WRITE, "configure": AclOperation.ALTER,
    "alter": AclOperation.ALTER, "describe": AclOperation.DESCRIBE, "create": AclOperation.CREATE,
    "delete": AclOperation.DELETE, "idempotent_write": AclOperation.IDEMPOTENT_WRITE,
    "describe_configs": AclOperation.DESCRIBE_CONFIGS, "alter_configs": AclOperation.ALTER_CONFIGS,
    "cluster_action": AclOperation.CLUSTER_ACTION, "kafka_admin": AclOperation.ALL,
}
#: Ranger kafka resource -> Kafka ACL resource type.
RESOURCE_TYPES = {"topic": ResourceType.TOPIC, "consumergroup": ResourceType.GROUP,
                  "transactionalid": ResourceType.TRANSACTIONAL_ID, "cluster": ResourceType.BROKER}
#: The one name of the cluster resource in Kafka's ACLs.
CLUSTER_NAME = "kafka-cluster"
#: The principals of the users mlstream owns ACLs of: ``User:NAME``.
PRINCIPAL_PREFIX = "User:"
#: SCRAM's iteration count for the users mlstream adds (Kafka's minimum is 4096).
SCRAM_ITERATIONS = 8192


@dataclass(frozen=True, order=True)
class Acl:
    """One Kafka ACL binding, as plain values (comparable, hashable, printable)."""

    principal: str
    permission: str  # ALLOW | DENY
    operation: str  # AclOperation name
    resource_type: str  # ResourceType name
    pattern_type: str  # LITERAL | PREFIXED
    name: str
    host: str = "*"

    def __str__(self) -> str:
        return (f"{self.permission} {self.principal} {self.operation} {self.resource_type} {self.pattern_type} "
                f"{self.name} from {self.host}")

    def binding(self) -> AclBinding:
        return AclBinding(*astuple_binding(self))

    @classmethod
    def of(cls, binding: AclBinding) -> "Acl":
        return cls(binding.principal, binding.permission_type.name, binding.operation.name, binding.restype.name,
                   binding.resource_pattern_type.name, binding.name, binding.host)


@dataclass(frozen=True)
class Refusal:
    """A policy (or part of one) that Kafka ACLs cannot express, where it is, and why."""

    where: str  # file:line: policies[i]...
    policy: str
    reason: str

    def __str__(self) -> str:
        return f"{self.where}: policy {self.policy!r}: {self.reason}"


@dataclass
class Plan:
    """What ``security apply`` does: users to add, ACLs to create and delete; refused policies stop it."""

    users_to_create: list[str] = field(default_factory=list)
    create: list[Acl] = field(default_factory=list)
    delete: list[Acl] = field(default_factory=list)
    keep: list[Acl] = field(default_factory=list)
    refusals: list[Refusal] = field(default_factory=list)

    @property
    def changes(self) -> int:
        return len(self.users_to_create) + len(self.create) + len(self.delete)


def policy_acls(policies: PolicyFile, directory: Directory) -> tuple[list[Acl], list[Refusal]]:
    """The ACLs of every enabled policy, sorted, and what could not be expressed."""
    acls: set[Acl] = set()
    refusals: list[Refusal] = []
    for i, policy in policies.enabled():
        def refuse(reason: str, *path) -> None:
            refusals.append(Refusal(f"{policies.source}:{policies.line_of('policies', i, *path)}: "
                                    f"{dotted(('policies', i, *path))}", policy.name, reason))

        before = len(refusals)
        for key, reason in (("allowExceptions", "allowExceptions carve users out of an allow; Kafka ACLs have no "
                                                "exceptions (list the users who are allowed instead)"),
                            ("denyExceptions", "denyExceptions carve users out of a deny; Kafka ACLs have no "
                                               "exceptions"),
                            ("validitySchedules", "validity schedules are times; Kafka ACLs do not expire"),
                            ("conditions", "policy conditions cannot be checked by Kafka's authorizer")):
            if policy.get(key):
                refuse(reason, key)
        if policy.isDenyAllElse:
            refuse("isDenyAllElse denies everyone else, over other policies' grants; Kafka ACLs cannot override "
                   "an ALLOW except with a DENY per principal", "isDenyAllElse")
        (resource_name, resource), = policy.resources.items()
        if resource.isExcludes:
            refuse(f"isExcludes grants every {resource_name} except the values; Kafka ACLs match names, "
                   f"literally or by prefix, never by exclusion", "resources", resource_name, "isExcludes")
        if resource_name not in RESOURCE_TYPES:
            refuse(f"'{resource_name}' has no Kafka ACL resource that confluent-kafka's admin client can bind "
                   f"(it binds {', '.join(RESOURCE_TYPES)})", "resources", resource_name)
            continue
        patterns = []
        for k, value in enumerate(resource["values"]):
            pattern = _pattern(resource_name, value)
            if pattern is None:
                refuse(f"value {value!r}: Kafka ACLs match a literal name, a prefix ('name*') or every name ('*'), "
                       f"not a '*' or '?' inside a name", "resources", resource_name, "values", k)
            else:
                patterns.append(pattern)
        items = [("ALLOW", "policyItems", j, item) for j, item in enumerate(policy.policyItems or [])]
        items += [("DENY", "denyPolicyItems", j, item) for j, item in enumerate(policy.denyPolicyItems or [])]
        item_acls = []
        for permission, list_name, j, item in items:
            if item.roles:
                refuse("roles are not in the directory; name the users or groups", list_name, j, "roles")
            hosts = _hosts(item, lambda reason: refuse(reason, list_name, j, "conditions"))
            principals = sorted({*(item.users or []), *(u for g in item.groups or [] for u in directory.members(g))})
            for access in item.accesses or []:
                if not access.isAllowed:
                    continue
                item_acls += [Acl(PRINCIPAL_PREFIX + user, permission, OPERATIONS[access.type].name,
                                  RESOURCE_TYPES[resource_name].name, pattern_type, name, host)
                              for user in principals for host in hosts for pattern_type, name in patterns]
        if len(refusals) == before:  # a policy is bound whole or not at all
            acls.update(item_acls)
    return sorted(acls), refusals


def _pattern(resource_name: str, value: str) -> tuple[str, str] | None:
    if resource_name == "cluster":
        return "LITERAL", CLUSTER_NAME
    if value == "*":
        return "LITERAL", "*"
    stem = value[:-1] if value.endswith("*") else value
    if "*" in stem or "?" in stem:
        return None
    return ("PREFIXED" if value.endswith("*") else "LITERAL"), stem


def _hosts(item, refuse) -> list[str]:
    """The hosts of an item's ``ip-range`` condition (``*`` without one); refused: CIDR ranges, wildcards."""
    hosts = []
    for condition in item.conditions or []:
        if condition.get("type") != "ip-range":
            refuse(f"condition {condition.get('type')!r}: Kafka's kafka service-def has only ip-range")
            continue
        for value in condition.get("values") or []:
            try:
                hosts.append(str(ipaddress.ip_address(value)))
            except ValueError:
                refuse(f"ip-range {value!r}: a Kafka ACL's host is one address; CIDR ranges and wildcards cannot "
                       f"be expressed (list the addresses)")
    return hosts or ["*"]


# ----- the broker -------------------------------------------------------------------------------------------------

def current_acls(admin: AdminClient, principals: Iterable[str], timeout_s: float = 30) -> list[Acl]:
    """The broker's ACLs of ``principals`` (``User:NAME``), sorted."""
    found = set()
    for principal in sorted(set(principals)):
        query = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, principal, None,
                                 AclOperation.ANY, AclPermissionType.ANY)
        found.update(Acl.of(binding) for binding in admin.describe_acls(query).result(timeout=timeout_s))
    return sorted(found)


def scram_users(admin: AdminClient, timeout_s: float = 30) -> set[str]:
    """The users that have a SCRAM credential on the broker."""
    return set(admin.describe_user_scram_credentials().result(timeout=timeout_s))


def plan(policies: PolicyFile | None, directory: Directory, owned_users: Iterable[str], current: list[Acl],
         existing_users: set[str], reserved_users: Iterable[str] = ()) -> Plan:
    """What makes the broker match the policies. ``owned_users`` are the users whose ACLs mlstream owns (every
    user of every directory version): their ACLs the policies do not grant are deleted, nobody else's.
    ``reserved_users`` (the profile's own users) may not be in the directory: their ACLs are not the policies'."""
    desired, refusals = policy_acls(policies, directory) if policies else ([], [])
    refusals += [Refusal("the directory", "-", f"user {user!r} is this profile's own user (the apps' or the "
                         f"administrator's); its ACLs are not the policies' to own: give the team another user")
                 for user in sorted(set(reserved_users) & set(directory.users))]
    owned = {PRINCIPAL_PREFIX + user for user in owned_users} | {PRINCIPAL_PREFIX + user for user in directory.users}
    mine = {acl for acl in current if acl.principal in owned}
    return Plan(users_to_create=sorted(set(directory.users) - existing_users),
                create=sorted(set(desired) - mine), delete=sorted(mine - set(desired)),
                keep=sorted(mine & set(desired)), refusals=refusals)


class PoliciesRefused(UserError):
    """Some policies cannot be expressed as Kafka ACLs: nothing is applied; the message lists each with its reason."""

    def __init__(self, refusals: list[Refusal]):
        super().__init__(f"{len(refusals)} part(s) of the Kafka policies cannot be expressed as Kafka ACLs, so none "
                         f"was applied; change them:\n  " + "\n  ".join(map(str, refusals)))
        self.refusals = refusals


def apply(admin: AdminClient, planned: Plan, password_of: Callable[[str], str],
          mechanism: ScramMechanism = ScramMechanism.SCRAM_SHA_512, timeout_s: float = 30) -> None:
    """Carry out ``planned``: ACLs first, so that a broker without an authorizer refuses before anything changed
    (an ACL of a user not yet made grants nobody anything), then the SCRAM users."""
    if planned.refusals:
        raise PoliciesRefused(planned.refusals)
    if planned.create:
        for future in admin.create_acls([acl.binding() for acl in planned.create]).values():
            future.result(timeout=timeout_s)
    if planned.delete:
        filters = [AclBindingFilter(*astuple_binding(acl)) for acl in planned.delete]
        for future in admin.delete_acls(filters).values():
            future.result(timeout=timeout_s)
    if planned.users_to_create:
        upserts = [UserScramCredentialUpsertion(user, ScramCredentialInfo(mechanism, SCRAM_ITERATIONS),
                                                password_of(user).encode()) for user in planned.users_to_create]
        for future in admin.alter_user_scram_credentials(upserts).values():
            future.result(timeout=timeout_s)


def astuple_binding(acl: Acl) -> tuple:
    """The arguments of an AclBinding (or of the AclBindingFilter that matches exactly it)."""
    return (ResourceType[acl.resource_type], acl.name, ResourcePatternType[acl.pattern_type], acl.principal,
            acl.host, AclOperation[acl.operation], AclPermissionType[acl.permission])
