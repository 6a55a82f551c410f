"""Ranger policy files: the JSON a Ranger plugin loads, for a ``kafka`` service and a ``hive``-type service.

A file is either what a plugin downloads (``{serviceName, serviceId, policyVersion,
policyUpdateTime, policies, serviceDef, ...}``) or Ranger Admin's export (``{metaDataInfo,
policies}``), so the same file can be imported into a real Ranger Admin unchanged. Its
policies are read into the ``apache-ranger`` package's own model (``RangerPolicy``, with
``RangerPolicyItem``, ``RangerDataMaskPolicyItem``, ``RangerRowFilterPolicyItem``).

Which service a file is for follows from its resources, as in Ranger's service-defs:

* ``kafka``: each policy has one of ``topic``, ``consumergroup``, ``transactionalid``,
  ``cluster``, ``delegationtoken``; access policies only (Ranger's Kafka service-def has no
  masking and no row filters); accesses ``publish``, ``consume``, ``configure``, ...
* ``hive``: ``database`` > ``table`` > ``column``, which name an ML dataset (a topic) and its
  fields; access policies (``select``), data-mask policies on columns (policyType 1, the mask
  types of Hive's service-def) and row-filter policies on tables (policyType 2).

Every problem is named by file, line and key, and every problem of a file is listed at once.

>>> text = '''{"serviceName": "cm_kafka", "policyVersion": 3, "policies": [
...   {"name": "fraud reads", "resources": {"topic": {"values": ["customers.secure.fraud"]}},
...    "policyItems": [{"groups": ["fraud"], "accesses": [{"type": "consume"}]}]}]}'''
>>> policies = PolicyFile.parse(text, "kafka.json")
>>> policies.service_type, policies.version, policies.policies[0].policyItems[0].accesses[0].type
('kafka', 3, 'consume')
>>> PolicyFile.parse(text.replace('"consume"', '"read"'), "kafka.json")
Traceback (most recent call last):
...
mlstream.security.directory.SecurityConfigError: policy file kafka.json is invalid:
  kafka.json:3: policies[0].policyItems[0].accesses[0].type: 'read' is not an access of Ranger's kafka service (...)
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from typing import Any

from apache_ranger.model.ranger_policy import RangerPolicy

from mlstream.security import expressions
from mlstream.security.directory import PUBLIC_GROUP, Directory, SecurityConfigError
from mlstream.settings import SCHEMA_DIR
from mlstream.yaml_schema import compose_with_lines, dotted, schema_problems

SCHEMA_PATH = SCHEMA_DIR / "ranger_policies.schema.json"

ACCESS, DATA_MASK, ROW_FILTER = RangerPolicy.POLICY_TYPE_ACCESS, RangerPolicy.POLICY_TYPE_DATAMASK, \
    RangerPolicy.POLICY_TYPE_ROWFILTER

#: Ranger's kafka service-def: its resources (one per policy) and access types.
KAFKA_RESOURCES = ("topic", "consumergroup", "transactionalid", "cluster", "delegationtoken")
KAFKA_ACCESSES = ("publish", "consume", "configure", "describe", "kafka_admin", "create", "delete",
                  "idempotent_write", "describe_configs", "alter_configs", "cluster_action", "alter")

#: Ranger's hive service-def: the resource hierarchy, the access types, the mask types.
HIVE_RESOURCES = ("database", "table", "column")
HIVE_ACCESSES = ("select", "update", "create", "drop", "alter", "index", "lock", "all", "read", "write",
                 "repladmin", "serviceadmin", "tempudfadmin", "refresh")
MASK_TYPES = ("MASK", "MASK_SHOW_LAST_4", "MASK_SHOW_FIRST_4", "MASK_HASH", "MASK_NULL", "MASK_NONE",
              "MASK_DATE_SHOW_YEAR", "CUSTOM")

SERVICE_TYPES = {"kafka": (KAFKA_RESOURCES, KAFKA_ACCESSES), "hive": (HIVE_RESOURCES, HIVE_ACCESSES)}
ITEM_LISTS = ("policyItems", "denyPolicyItems", "allowExceptions", "denyExceptions", "dataMaskPolicyItems",
              "rowFilterPolicyItems")


@dataclass(frozen=True)
class PolicyFile:
    source: str
    service_name: str | None
    service_type: str  # "kafka" or "hive"
    version: int | None  # the file's policyVersion (None in an export)
    policies: tuple[RangerPolicy, ...]
    lines: dict[tuple, int]

    @classmethod
    def parse(cls, text: str, source: str, directory: Directory | None = None,
              service_type: str | None = None) -> "PolicyFile":
        """Check a policy file and read it; with ``directory``, every user and group it names must be there.
        ``service_type`` (kafka, hive) is what the file must be for; default: what its resources say."""
        document, lines = compose_with_lines(text, source, SecurityConfigError)
        if document is None:
            raise SecurityConfigError(f"{source}: empty; a policy file needs 'policies' (see docs/security.md)")
        problems = schema_problems(policy_file_schema(), document, lines, source)
        found_type = None
        if not problems:
            found_type, problems = _service_type(document, lines, source, service_type)
        if not problems:
            problems = _policy_problems(document, lines, source, found_type, directory)
        if problems:
            problems.sort(key=lambda problem: _line(problem, source))
            raise SecurityConfigError(f"policy file {source} is invalid:\n  " + "\n  ".join(problems))
        policies = []
        for raw in document["policies"]:
            policy = RangerPolicy(raw)
            policy.type_coerce_attrs()
            policies.append(policy)
        return cls(source, document.get("serviceName"), found_type, document.get("policyVersion"),
                   tuple(policies), lines)

    def line_of(self, *path: Any) -> int:
        """The line of ``policies[i]...``: what a refusal names."""
        return self.lines.get(tuple(path), 0)

    def enabled(self) -> list[tuple[int, RangerPolicy]]:
        """(index, policy) of each policy Ranger would enforce: ``isEnabled`` is true by default."""
        return [(i, p) for i, p in enumerate(self.policies) if p.get("isEnabled", True)]


@cache
def policy_file_schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text())


def _line(problem: str, source: str) -> int:
    """The line a problem names (``file:LINE: ...``), 0 for the whole file: to list problems in file order."""
    found = re.match(r"(\d+):", problem[len(source) + 1:])
    return int(found.group(1)) if found else 0


def _at(lines: dict[tuple, int], source: str, path: tuple) -> str:
    return f"{source}:{lines.get(path, 0)}: {dotted(path)}"


def _service_type(document: dict, lines: dict, source: str, expected: str | None) -> tuple[str | None, list[str]]:
    """The service a file is for, from its policies' resources (and ``serviceType`` where given)."""
    kinds: dict[str, tuple] = {}
    problems = []
    for i, policy in enumerate(document["policies"]):
        names = set(policy["resources"])
        kind = next((k for k, (resources, _) in SERVICE_TYPES.items() if names <= set(resources)), None)
        if kind is None:
            known = ", ".join(f"{k}: {', '.join(r)}" for k, (r, _) in SERVICE_TYPES.items())
            problems.append(f"{_at(lines, source, ('policies', i, 'resources'))}: resources {sorted(names)} "
                            f"belong to no service mlstream knows ({known})")
            continue
        declared = policy.get("serviceType")
        if declared and declared != kind:
            problems.append(f"{_at(lines, source, ('policies', i, 'serviceType'))}: says {declared!r} but its "
                            f"resources are {kind}'s")
        kinds.setdefault(kind, ("policies", i))
    if len(kinds) > 1:
        where = "; ".join(f"{kind} from {_at(lines, source, path)}" for kind, path in kinds.items())
        problems.append(f"{source}: one file is for one service, this one mixes {where}")
    kind = next(iter(kinds), expected)
    if expected and kind != expected and not problems:
        problems.append(f"{source}: its policies are for a {kind} service, but this config holds {expected} policies")
    return kind, problems


def _policy_problems(document: dict, lines: dict, source: str, kind: str, directory: Directory | None) -> list[str]:
    resources_allowed, accesses = SERVICE_TYPES[kind]
    problems = []
    names_seen: dict[str, int] = {}
    for i, policy in enumerate(document["policies"]):
        here = ("policies", i)
        if policy["name"] in names_seen:
            problems.append(f"{_at(lines, source, (*here, 'name'))}: policy name {policy['name']!r} is already "
                            f"used by policies[{names_seen[policy['name']]}] (Ranger requires unique names)")
        names_seen.setdefault(policy["name"], i)
        policy_type = policy.get("policyType", ACCESS)
        resources = policy["resources"]
        if kind == "kafka":
            if len(resources) != 1:
                problems.append(f"{_at(lines, source, (*here, 'resources'))}: a kafka policy names one resource "
                                f"type, this one {len(resources)} ({', '.join(resources)})")
            if policy_type != ACCESS:
                problems.append(f"{_at(lines, source, (*here, 'policyType'))}: Ranger's kafka service has access "
                                f"policies only (0); masks and row filters go in a hive-type policy file")
        else:
            problems += _hive_resource_problems(policy, policy_type, lines, source, here)
        allowed_lists = {ACCESS: ("policyItems", "denyPolicyItems", "allowExceptions", "denyExceptions"),
                         DATA_MASK: ("dataMaskPolicyItems",), ROW_FILTER: ("rowFilterPolicyItems",)}[policy_type]
        for list_name in ITEM_LISTS:
            for j, item in enumerate(policy.get(list_name, [])):
                at = (*here, list_name, j)
                if list_name not in allowed_lists:
                    problems.append(f"{_at(lines, source, at)}: a policyType {policy_type} policy has no "
                                    f"{list_name} (it takes {', '.join(allowed_lists)})")
                    continue
                problems += _item_problems(item, at, lines, source, kind, accesses, directory)
    return problems


def _hive_resource_problems(policy: dict, policy_type: int, lines: dict, source: str, here: tuple) -> list[str]:
    resources = policy["resources"]
    at = (*here, "resources")
    if "database" not in resources:
        return [f"{_at(lines, source, at)}: a hive policy names a database (the dataset's namespace)"]
    if "column" in resources and "table" not in resources:
        return [f"{_at(lines, source, at)}: a column is named within a table: add 'table'"]
    if policy_type == DATA_MASK and set(resources) != {"database", "table", "column"}:
        return [f"{_at(lines, source, at)}: a data-mask policy (policyType 1) names a database, a table and a column"]
    if policy_type == ROW_FILTER and set(resources) != {"database", "table"}:
        return [f"{_at(lines, source, at)}: a row-filter policy (policyType 2) names a database and a table, "
                f"no column"]
    return []


def _expression_problems(text: str, item: dict, at: tuple, lines: dict, source: str,
                         directory: Directory | None) -> list[str]:
    """A filterExpr or valueExpr must parse, and every user it applies to must have the attributes it uses."""
    try:
        tree = expressions.parse(text)
    except expressions.ExpressionError as err:
        return [f"{_at(lines, source, at)}: {err}"]
    if directory is None:
        return []
    users = {*item.get("users", []), *(u for g in item.get("groups", []) for u in directory.members(g))}
    return [f"{_at(lines, source, at)}: ${{{{USER.{attribute}}}}}: user {user!r} has no attribute {attribute!r} in "
            f"the directory" for user in sorted(users & set(directory.users))
            for attribute in sorted(expressions.macros(tree)) if attribute not in directory.users[user].attributes]


def _item_problems(item: dict, at: tuple, lines: dict, source: str, kind: str, accesses: tuple,
                   directory: Directory | None) -> list[str]:
    problems = []
    if not (item.get("users") or item.get("groups") or item.get("roles")):
        problems.append(f"{_at(lines, source, at)}: names no users, groups or roles: it applies to no one")
    for k, access in enumerate(item.get("accesses", [])):
        if access["type"] not in accesses:
            problems.append(f"{_at(lines, source, (*at, 'accesses', k, 'type'))}: {access['type']!r} is not an "
                            f"access of Ranger's {kind} service ({', '.join(accesses)})")
    mask = item.get("dataMaskInfo")
    if mask is not None:
        if mask["dataMaskType"] not in MASK_TYPES:
            problems.append(f"{_at(lines, source, (*at, 'dataMaskInfo', 'dataMaskType'))}: "
                            f"{mask['dataMaskType']!r} is not one of Ranger's mask types ({', '.join(MASK_TYPES)})")
        elif mask["dataMaskType"] == "CUSTOM" and not (mask.get("valueExpr") or "").strip():
            problems.append(f"{_at(lines, source, (*at, 'dataMaskInfo'))}: a CUSTOM mask needs a valueExpr")
        elif mask["dataMaskType"] == "CUSTOM":
            problems += _expression_problems(mask["valueExpr"], item, (*at, "dataMaskInfo", "valueExpr"), lines,
                                             source, directory)
    if item.get("rowFilterInfo") is not None:
        problems += _expression_problems(item["rowFilterInfo"]["filterExpr"], item,
                                         (*at, "rowFilterInfo", "filterExpr"), lines, source, directory)
    if directory is not None:
        for k, user in enumerate(item.get("users", [])):
            if user not in directory.users:
                problems.append(f"{_at(lines, source, (*at, 'users', k))}: user {user!r} is not in the directory "
                                f"(users: {', '.join(sorted(directory.users))})")
        for k, group in enumerate(item.get("groups", [])):
            if group != PUBLIC_GROUP and group not in directory.groups:
                problems.append(f"{_at(lines, source, (*at, 'groups', k))}: group {group!r} has no member in the "
                                f"directory (groups: {', '.join(sorted(directory.groups)) or 'none'})")
    return problems
