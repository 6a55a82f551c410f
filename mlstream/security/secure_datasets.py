"""Secure datasets: what each team may see of a raw dataset topic, by the hive-type Ranger policies.

A dataset is a topic ``DATABASE.TABLE`` (``customers.raw`` is database ``customers``, table
``raw``); its columns are the record schema's top-level fields. For each team (a group) that
an access policy grants ``select`` on the table, :func:`team_views` builds a :class:`TeamView`,
Ranger's semantics carried over:

* **columns**: the access policies' ``column`` values the team is granted (``*`` or no column
  resource: all); the others are left out of the team's records and schema;
* **masks**: per column, the first data-mask policy (override priority first, then file
  order) with an item for the team; its mask type (or CUSTOM ``valueExpr``) is applied;
* **rows**: the first row-filter policy with an item for the team; a row is kept only where
  its ``filterExpr`` is TRUE, ``${{USER.attr}}`` resolved from the directory (every member of
  the team must have the same value: a team's dataset has one filter).

The team's records go to ``<topic>.secure.<team>`` with a schema of their own
(:attr:`TeamView.schema`): masked fields change type where they must (a hash is a string) and
say in their ``doc`` what masked them. A policy that names a column the dataset does not have,
or that cannot be applied, is a :class:`ViewError` for that team alone.

>>> from mlstream.security.directory import Directory
>>> from mlstream.security.policies import PolicyFile
>>> import json
>>> directory = Directory.parse("users: {fay: {groups: [fraud], attributes: {region: EU}}}", "d")
>>> def policy(name, policy_type, resources, **items):
...     return {"name": name, "policyType": policy_type, "resources": {
...         "database": {"values": ["customers"]}, "table": {"values": ["raw"]}, **resources}, **items}
>>> policies = PolicyFile.parse(json.dumps({"policies": [
...     policy("read", 0, {"column": {"values": ["*"]}},
...            policyItems=[{"groups": ["fraud"], "accesses": [{"type": "select"}]}]),
...     policy("email", 1, {"column": {"values": ["email"]}}, dataMaskPolicyItems=[
...            {"groups": ["fraud"], "dataMaskInfo": {"dataMaskType": "MASK_HASH"}}]),
...     policy("rows", 2, {}, rowFilterPolicyItems=[
...            {"groups": ["fraud"], "rowFilterInfo": {"filterExpr": "region = ${{USER.region}}"}}])]}), "h", directory)
>>> schema = {"type": "record", "name": "Customer", "fields": [
...     {"name": "id", "type": "string"}, {"name": "email", "type": "string"}, {"name": "region", "type": "string"}]}
>>> view = team_views(policies, directory, "customers.raw", schema, 4)["fraud"]
>>> view.topic, [f["type"] for f in view.schema["fields"]]
('customers.raw.secure.fraud', ['string', ['null', 'string'], 'string'])
>>> view.apply({"id": "1", "email": "a@b.c", "region": "EU"}) == {"id": "1", "email": masks.mask_hash("a@b.c"),
...                                                                 "region": "EU"}
True
>>> view.apply({"id": "2", "email": "d@e.f", "region": "US"}) is None   # filtered out
True
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any

from mlstream.errors import UserError
from mlstream.security import expressions, masks
from mlstream.security.directory import Directory
from mlstream.security.policies import ACCESS, DATA_MASK, ROW_FILTER, PolicyFile

#: The header of every secure record: which policy version produced it (``security.hive@v3 (policyVersion 7)``).
POLICY_HEADER = "mlstream.policy"
SECURE_INFIX = ".secure."


class ViewError(UserError):
    """A team's policies cannot be applied to the dataset: its secure topic is not written (fail closed)."""


class RecordRefused(ValueError):
    """A record that cannot be masked as the policy says (a masked field missing): it is dead-lettered."""

    def __init__(self, field_name: str, reason: str):
        super().__init__(f"{field_name}: {reason}")
        self.field, self.reason = field_name, reason


@dataclass(frozen=True)
class ColumnMask:
    column: str
    mask_type: str
    value_expr: expressions.Node | None
    policy: str

    def apply(self, value: Any, record: dict, user: dict[str, Any]) -> Any:
        if self.mask_type == "CUSTOM":
            return expressions.evaluate(self.value_expr, record, user, column=value)
        return masks.apply_mask(self.mask_type, value)


@dataclass(frozen=True)
class TeamView:
    team: str
    raw_topic: str
    columns: tuple[str, ...]  # the columns the team sees, in the raw schema's order
    masks: dict[str, ColumnMask]
    row_filter: expressions.Node | None
    row_filter_text: str | None
    user: dict[str, Any]  # the attributes ${{USER.attr}} resolves to
    version: str  # which policy version this is, for the record header and the lineage
    schema: dict = field(compare=False)

    @property
    def topic(self) -> str:
        return secure_topic(self.raw_topic, self.team)

    @property
    def schema_str(self) -> str:
        return json.dumps(self.schema)

    def apply(self, record: dict) -> dict | None:
        """The team's record (masked, its columns only), None if the row filter leaves it out, or RecordRefused.

        Raises :class:`expressions.ExpressionError` if the filter or a CUSTOM mask cannot be evaluated on it:
        the policy cannot be applied, so the caller stops writing the team's topic."""
        for column in self.masks:
            if column not in record:
                raise RecordRefused(column, f"masked for team {self.team} by policy {self.masks[column].policy!r} "
                                            f"but missing from the record; never passed on unmasked")
        if self.row_filter is not None and not expressions.keeps(self.row_filter, record, self.user):
            return None
        return {column: (self.masks[column].apply(record.get(column), record, self.user) if column in self.masks
                         else record.get(column)) for column in self.columns}


def secure_topic(raw_topic: str, team: str) -> str:
    return f"{raw_topic}{SECURE_INFIX}{team}"


def dataset_of(topic: str) -> tuple[str, str]:
    """(database, table) that name ``topic`` in hive-type policies: the topic split at its last '.'."""
    database, _, table = topic.rpartition(".")
    return database, table


def _matches(values: list[str], name: str) -> bool:
    return any(value == "*" or value == name or (value.endswith("*") and name.startswith(value[:-1]))
               for value in values)


def _on_table(policy, topic: str) -> bool:
    database, table = dataset_of(topic)
    resources = policy.resources
    return _matches(resources["database"]["values"], database) and "table" in resources and \
        _matches(resources["table"]["values"], table)


def _items_for(items, team: str) -> list:
    return [item for item in items or [] if team in (item.groups or [])]


def _ordered(policies: PolicyFile) -> list:
    """Enabled policies, override priority (1) first, then in file order: the order Ranger evaluates them."""
    enabled = [p for _, p in policies.enabled()]
    return sorted(enabled, key=lambda p: -(p.policyPriority or 0))


def teams_of(policies: PolicyFile, topic: str) -> list[str]:
    """The teams an access policy grants ``select`` on the dataset of ``topic``."""
    return sorted({group for p in _ordered(policies) if (p.policyType or ACCESS) == ACCESS and _on_table(p, topic)
                   for item in p.policyItems or [] for group in item.groups or []
                   if any(a.type in ("select", "all") and a.isAllowed for a in item.accesses or [])})


def team_views(policies: PolicyFile, directory: Directory, topic: str, raw_schema: dict,
               version: int | str) -> dict[str, TeamView | ViewError]:
    """Each team's view of ``topic`` (its record schema ``raw_schema``), or the reason it cannot be built."""
    label = f"security.hive@v{version}" + (f" (policyVersion {policies.version})" if policies.version is not None
                                           else "")
    views: dict[str, TeamView | ViewError] = {}
    for team in teams_of(policies, topic):
        try:
            views[team] = _team_view(policies, directory, topic, raw_schema, team, label)
        except (ViewError, expressions.ExpressionError) as err:
            views[team] = ViewError(f"team {team}, {topic}, {label}: {err}")
    return views


def _team_view(policies: PolicyFile, directory: Directory, topic: str, raw_schema: dict, team: str,
               label: str) -> TeamView:
    fields = {f["name"]: f for f in raw_schema["fields"]}
    ordered = [p for p in _ordered(policies) if _on_table(p, topic)]

    def known(column: str, policy) -> str:
        if column not in fields:
            raise ViewError(f"policy {policy.name!r} names column {column!r}, which {topic} does not have "
                            f"(its fields: {', '.join(fields)})")
        return column

    visible: set[str] = set()
    for policy in (p for p in ordered if (p.policyType or ACCESS) == ACCESS):
        granted = [item for item in _items_for(policy.policyItems, team)
                   if any(a.type in ("select", "all") and a.isAllowed for a in item.accesses or [])]
        if granted:
            values = policy.resources["column"]["values"] if "column" in policy.resources else ["*"]
            for value in values:
                if "*" in value:
                    visible |= {name for name in fields if _matches([value], name)}
                else:
                    visible.add(known(value, policy))
    column_masks: dict[str, ColumnMask] = {}
    for policy in (p for p in ordered if p.policyType == DATA_MASK):
        items = _items_for(policy.dataMaskPolicyItems, team)
        if not items:
            continue
        info = items[0].dataMaskInfo
        for value in policy.resources["column"]["values"]:
            for column in ([known(value, policy)] if "*" not in value else
                           [name for name in fields if _matches([value], name)]):
                if column not in column_masks:  # the first policy that masks a column decides, as in Ranger
                    tree = expressions.parse(info.valueExpr) if info.dataMaskType == "CUSTOM" else None
                    column_masks[column] = ColumnMask(column, info.dataMaskType, tree, policy.name)
    row_filter = row_filter_text = None
    for policy in (p for p in ordered if p.policyType == ROW_FILTER):
        items = _items_for(policy.rowFilterPolicyItems, team)
        if items:
            row_filter_text = items[0].rowFilterInfo.filterExpr
            row_filter = expressions.parse(row_filter_text)
            for column in expressions.columns(row_filter):
                known(column.split(".")[0], policy)
            break
    used = set().union(*(expressions.macros(t) for t in [row_filter, *(m.value_expr for m in column_masks.values())]
                         if t is not None))
    user = _team_attributes(directory, team, used)
    for mask in column_masks.values():
        if mask.value_expr is not None:
            for column in expressions.columns(mask.value_expr):
                known(column.split(".")[0], mask.policy)
    columns = tuple(name for name in fields if name in visible)
    column_masks = {c: m for c, m in column_masks.items() if c in visible}
    return TeamView(team, topic, columns, column_masks, row_filter, row_filter_text, user, label,
                    _schema(raw_schema, topic, team, columns, column_masks, row_filter_text, label))


def _team_attributes(directory: Directory, team: str, used: set[str]) -> dict[str, Any]:
    members = directory.members(team)
    attributes = {}
    for name in sorted(used):
        values = {json.dumps(directory.users[m].attributes.get(name)) for m in members}
        if len(values) != 1 or values == {"null"}:
            raise ViewError(f"${{{{USER.{name}}}}}: the members of {team} ({', '.join(members)}) must share one "
                            f"value of {name!r} (one filter per team dataset); they have {', '.join(sorted(values))}")
        attributes[name] = json.loads(values.pop())
    return attributes


def _schema(raw: dict, topic: str, team: str, columns: tuple[str, ...], column_masks: dict[str, ColumnMask],
            row_filter: str | None, label: str) -> dict:
    out_fields = []
    for raw_field in raw["fields"]:
        if raw_field["name"] not in columns:
            continue
        out = copy.deepcopy(raw_field)
        mask = column_masks.get(raw_field["name"])
        if mask is not None:
            out["type"] = masks.masked_type(mask.mask_type, raw_field["type"]) if mask.mask_type != "CUSTOM" \
                else ["null", "string", "long", "double", "boolean"]
            if mask.mask_type != "MASK_NONE":
                out["default"] = None
            out["doc"] = (f"{raw_field.get('doc', '')} [masked: {mask.mask_type} by policy {mask.policy!r}]").strip()
        out_fields.append(out)
    kept = f"rows kept where {row_filter}" if row_filter else "every row"
    masked = ", ".join(f"{c} ({m.mask_type})" for c, m in column_masks.items()) or "none"
    return {"type": "record", "name": f"{raw['name']}_secure_{_avro_name(team)}",
            "namespace": raw.get("namespace", "mlstream") + ".secure",
            "doc": f"The secure dataset of {topic} for team {team}, by {label}: masked {masked}; {kept}.",
            "fields": out_fields}


def _avro_name(text: str) -> str:
    return "".join(c if c.isalnum() or c == "_" else "_" for c in text)
