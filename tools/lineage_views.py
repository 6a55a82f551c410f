"""What ``mlstream lineage show | who`` print, read over Atlas REST v2 with the official client.

The same code reads a real Atlas (``MLSTREAM_ATLAS_URL``) or the embedded lineage service
(``http://127.0.0.1:$MLSTREAM_LINEAGE_PORT``), so what it shows is what any Atlas client sees.
An entity is named by its guid, ``type:qualifiedName``, ``<model>/<build version>``,
``<model>@<stream app>`` (the model's deployment on that app), or a qualifiedName or topic name
alone (the ``@<namespace>`` suffix may be left out).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from apache_atlas.client.base_client import AtlasClient
from apache_atlas.exceptions import AtlasServiceException
from requests.exceptions import ConnectionError as RequestsConnectionError

from mlstream.errors import UserError
from mlstream.identifiers import build_crn, deployment_crn

#: Types tried, in order, for a name given without a type.
SEARCHED_TYPES = ("kafka_topic", "mlstream_stream_process", "mlstream_feed_process", "mlstream_source_dataset",
                  "ml_model_build", "ml_model_train_build_process", "ml_model_deployment", "hive_table",
                  "spark_table", "aws_s3_v2_directory", "avro_schema")
_BUILD = re.compile(r"^([^/:@\s]+)/(\d+)$")
_DEPLOYMENT = re.compile(r"^([^/:@\s]+)@([^/:@\s]+)$")
_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def atlas_client(settings) -> AtlasClient:
    url = settings.atlas_url or f"http://127.0.0.1:{settings.lineage_port}"
    return AtlasClient(url, ("admin", "admin"))


def call(client, func, *args):
    """``func(*args)``; None for a 404, a UserError for any other failure (the service down, an error)."""
    try:
        return func(*args)
    except AtlasServiceException as err:
        if " 404" in str(err) or "status 404" in str(err):
            return None
        raise UserError(f"Atlas at {client.host}: {err}") from err
    except RequestsConnectionError as err:
        raise UserError(f"no lineage service at {client.host}: start it with 'mlstream lineage serve' "
                        f"or set MLSTREAM_ATLAS_URL") from err


def find_entity(client, name: str, namespace: str) -> dict:
    """The entity (attributes, guid, typeName, status, times) that ``name`` denotes."""
    if _GUID.match(name):
        found = call(client, client.entity.get_entity_by_guid, name)
        if found:
            return dict(found.entity)
    build, deployment = _BUILD.match(name), _DEPLOYMENT.match(name)
    if build:  # <model>/<version>: that model's build
        name = f"ml_model_build:{build_crn(build.group(1), build.group(2))}"
    type_name, sep, rest = name.partition(":")
    candidates = [(type_name, rest)] if sep and not name.startswith("crn:") else \
        [(t, name) for t in SEARCHED_TYPES]
    if deployment:  # <model>@<app>, unless it is a qualifiedName such as mlstream.records@primary
        candidates.insert(0, ("ml_model_deployment", deployment_crn(deployment.group(1), deployment.group(2))))
    for type_name, qualified_name in candidates:
        for qn in (qualified_name, f"{qualified_name.lower()}@{namespace}"):
            found = call(client, client.entity.get_entity_by_attribute, type_name, {"qualifiedName": qn})
            if found:
                return dict(found.entity)
    raise UserError(f"no entity {name!r} in the lineage at {client.host}; give a guid, 'type:qualifiedName', "
                    f"<model>/<build version>, <model>@<stream app> or a qualifiedName such as "
                    f"mlstream.records@{namespace}")


def graph(client, name: str, namespace: str, depth: int = 5) -> dict:
    """The upstream and downstream trees of an entity (``lineage show --json``).

    Each node is ``{guid, typeName, qualifiedName, status, "from" | "to": [nodes]}``; a node met
    again further along is ``{..., "seen": true}`` without its subtree.
    """
    base = find_entity(client, name, namespace)
    info = call(client, client.lineage.get_lineage_info, base["guid"], "BOTH", depth)
    headers = {guid: dict(h) for guid, h in (info.guidEntityMap or {}).items()}
    headers.setdefault(base["guid"], {"typeName": base["typeName"], "status": base.get("status", "ACTIVE"),
                                      "attributes": base["attributes"]})
    upstream: dict[str, list[str]] = {}
    downstream: dict[str, list[str]] = {}
    for relation in info.relations or []:
        upstream.setdefault(relation.toEntityId, []).append(relation.fromEntityId)
        downstream.setdefault(relation.fromEntityId, []).append(relation.toEntityId)

    def node(guid: str) -> dict:
        header = headers[guid]
        return {"guid": guid, "typeName": header["typeName"], "qualifiedName": header["attributes"]["qualifiedName"],
                "status": header.get("status", "ACTIVE")}

    def tree(guid: str, edges: dict[str, list[str]], key: str, seen: frozenset) -> list[dict]:
        children = []
        for other in sorted(edges.get(guid, []), key=lambda g: _node_label(node(g))):
            if other in seen:
                children.append({**node(other), "seen": True})
            else:
                children.append({**node(other), key: tree(other, edges, key, seen | {other})})
        return children

    return {"entity": node(base["guid"]), "depth": depth,
            "upstream": tree(base["guid"], upstream, "from", frozenset({base["guid"]})),
            "downstream": tree(base["guid"], downstream, "to", frozenset({base["guid"]}))}


def _node_label(node: Mapping[str, Any]) -> str:
    status = "" if node["status"] == "ACTIVE" else f"  [{node['status']}]"
    return f"{node['typeName']} {node['qualifiedName']}{status}"


def format_graph(result: Mapping[str, Any]) -> str:
    """``lineage show``: the trees as indented text."""
    lines = [_node_label(result["entity"])]
    for title, key, arrow in (("upstream (where it comes from)", "upstream", "<-"),
                              ("downstream (where it goes)", "downstream", "->")):
        lines.append(f"{title}:")
        body = _tree_lines(result[key], "from" if key == "upstream" else "to", arrow, "  ")
        lines += body or ["  (none)"]
    return "\n".join(lines)


def _tree_lines(nodes: list[dict], key: str, arrow: str, indent: str) -> list[str]:
    lines = []
    for node in nodes:
        lines.append(f"{indent}{arrow} {_node_label(node)}" + (" (see above)" if node.get("seen") else ""))
        lines += _tree_lines(node.get(key, []), key, arrow, indent + "   ")
    return lines


def show(client, name: str, namespace: str, depth: int = 5) -> str:
    """The upstream and downstream graph of an entity as indented text."""
    return format_graph(graph(client, name, namespace, depth))


def who(client, name: str, namespace: str) -> dict:
    """The processes that produced and consumed a dataset, with when they were seen."""
    base = find_entity(client, name, namespace)
    info = call(client, client.lineage.get_lineage_info, base["guid"], "BOTH", 1)
    result: dict[str, Any] = {"dataset": f"{base['typeName']} {base['attributes']['qualifiedName']}",
                              "producers": [], "consumers": []}
    for relation in info.relations or []:
        if relation.toEntityId == base["guid"]:
            role, process_guid = "producers", relation.fromEntityId
        elif relation.fromEntityId == base["guid"]:
            role, process_guid = "consumers", relation.toEntityId
        else:
            continue
        process = dict(call(client, client.entity.get_entity_by_guid, process_guid).entity)
        attributes = process["attributes"]
        result[role].append({
            "process": f"{process['typeName']} {attributes['qualifiedName']}", "status": process.get("status"),
            "first_seen": iso_time(process.get("createTime")), "last_seen": iso_time(process.get("updateTime")),
            "started": iso_time(attributes.get("startedAt")),
            "user": process.get("updatedBy") or attributes.get("userName"),
        })
    return result


def format_who(result: Mapping[str, Any]) -> str:
    lines = [result["dataset"]]
    for role in ("producers", "consumers"):
        lines.append(f"{role}:")
        for p in result[role]:
            lines.append(f"  {p['process']}  status={p['status']}  first seen {p['first_seen']}, "
                         f"last seen {p['last_seen']}" + (f", started {p['started']}" if p["started"] else ""))
        if not result[role]:
            lines.append("  (none)")
    if "access" in result:
        lines.append("access (the audit topic: who read it or its secure topics, allowed or denied):")
        for a in result["access"]:
            lines.append(f"  {a['user']}  {a['result']} {a['access']} {a['resource']}  {a['events']} event(s) "
                         f"{a['first']} .. {a['last']}  ({a['enforcer']})")
        if not result["access"]:
            lines.append("  (none)")
    if "builds" in result:
        lines.append("builds trained on it (train/val/test offsets from each manifest), and who the audit shows "
                     "reading that topic:")
        for b in result["builds"]:
            splits = "; ".join(f"{name} " + ", ".join(f"[{p}] {start}..{end - 1}" for p, start, end in ranges)
                               for name, ranges in b["splits"].items() if ranges)
            lines.append(f"  {b['build']}  on {b['topic']}  trained {b['trained_at']}  ({splits})")
            for r in b["readers"]:
                lines.append(f"    {r['user']}  {r['result']} {r['access']}  {r['events']} event(s) "
                             f"{r['first']} .. {r['last']}")
            if not b["readers"]:
                lines.append("    (no reads of it in the audit)")
        if not result["builds"]:
            lines.append("  (none)")
    return "\n".join(lines)


def iso_time(epoch_ms) -> str | None:
    if epoch_ms is None:
        return None
    return datetime.fromtimestamp(int(epoch_ms) / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
