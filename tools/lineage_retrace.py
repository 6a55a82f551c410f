"""Retracing a model from its lineage: ``mlstream lineage build | readers | changes``.

Each answers one question an auditor asks, over Atlas REST v2 with the official client (a real
Atlas or the embedded service), and returns a JSON-ready dict that ``format_*`` turns into text:

* :func:`build`: which features, schema versions, offsets, sampling, splits and code commit a
  build used (its manifest, kept in the ``ml_model_build``'s metadata by ``mlstream train``),
  which datasets it was trained on, and which deployments serve it;
* :func:`readers`: every process, build and deployment downstream of a topic: whatever read it,
  directly or through a build trained on it;
* :func:`changes`: what each change of an entity changed, attribute by attribute and
  relationship by relationship, from its audit events; for a deployment, its deploy process's
  changes too (a redeploy moves both, a retire only the deployment).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from mlstream.errors import UserError
from mlstream.registry.manifest import BuildManifest
from tools.lineage_views import call, find_entity, iso_time

DEPLOYMENT = "ml_model_deployment"
#: How far ``readers`` follows the lineage downstream (processes).
READERS_DEPTH = 10


def _name(entity: Mapping[str, Any]) -> str:
    return entity["attributes"]["qualifiedName"]


def _is_reference(value: Any) -> bool:
    return isinstance(value, Mapping) and ("guid" in value or "uniqueAttributes" in value)


def _related_names(value: Any) -> list[str]:
    """The qualifiedNames (else guids) of a reference or a list of them."""
    items = value if isinstance(value, list) else ([value] if value else [])
    return sorted((i.get("uniqueAttributes") or {}).get("qualifiedName") or i.get("guid") for i in items)


# ----- build ----------------------------------------------------------------------------------

def build(client, name: str, namespace: str) -> dict:
    """What a model build was made of: the answer to "how was this model trained?"."""
    entity = find_entity(client, name, namespace)
    if entity["typeName"] != "ml_model_build":
        raise UserError(f"{name} is a {entity['typeName']}, not a model build; name one as <model>/<version>, "
                        f"its CRN or its guid")
    metadata = dict(entity["attributes"].get("metadata") or {})
    manifest = BuildManifest.from_json(metadata.pop("manifest")) if metadata.get("manifest") else None
    upstream = call(client, client.lineage.get_lineage_info, entity["guid"], "INPUT", 1)
    headers = {g: dict(h) for g, h in (upstream.guidEntityMap or {}).items()}
    trained_by = [r.fromEntityId for r in upstream.relations or [] if r.toEntityId == entity["guid"]]
    datasets = [headers[r.fromEntityId] for r in upstream.relations or [] if r.toEntityId in trained_by]
    schemas = _schema_versions(client, [d["guid"] for d in datasets if d["typeName"] == "kafka_topic"])
    result: dict[str, Any] = {
        "build": {"guid": entity["guid"], "qualifiedName": _name(entity), "name": entity["attributes"].get("name"),
                  "version": entity["attributes"].get("version"), "status": entity.get("status"),
                  "created": iso_time(entity["attributes"].get("createTime") or entity.get("createTime"))},
        "trained_by": [_name(headers[g]) for g in trained_by],
        "datasets": [{"typeName": d["typeName"], "qualifiedName": d["attributes"]["qualifiedName"],
                      "status": d.get("status"), **({"schema_versions": schemas[d["guid"]]}
                                                    if d["guid"] in schemas else {})}
                     for d in sorted(datasets, key=lambda d: d["attributes"]["qualifiedName"])],
        "deployments": [{"qualifiedName": q} for q in _related_names(
            (entity.get("relationshipAttributes") or {}).get("deployments"))],
    }
    if manifest is not None:
        result |= {
            "code_version": manifest.code_version, "spec": manifest.spec, "features": manifest.features,
            "feature_view": manifest.feature_view,
            "sampling": manifest.sampling, "schema_versions": manifest.schema_versions,
            "splits": [{"name": s.name, "fraction": manifest.split_fractions.get(s.name), "examples": s.examples,
                        "records": [vars(r) for r in s.records]} for s in manifest.splits],
            "labels": [vars(r) for r in manifest.labels], "metrics": manifest.metrics,
        }
    else:  # declared in a lineage config (not made by 'mlstream train'): what its metadata says
        result |= {
            "code_version": metadata.get("codeVersion"), "spec": metadata.get("spec"),
            "features": [f for f in metadata.get("features", "").split(",") if f],
            "sampling": {k.split(".", 1)[1]: v for k, v in metadata.items() if k.startswith("sampling.")},
            "splits": [{"name": k.split(".", 1)[1], "fraction": float(v)} for k, v in metadata.items()
                       if k.startswith("splits.")],
        }
    result["metadata"] = {k: v for k, v in metadata.items() if not k.startswith(("sampling.", "splits.", "split.",
                                                                                  "metrics."))}
    for deployment in result["deployments"]:
        found = call(client, client.entity.get_entity_by_attribute, DEPLOYMENT,
                     {"qualifiedName": deployment["qualifiedName"]})
        if found:
            attributes = found.entity.attributes
            deployment |= {"status": attributes.get("status"), "deployed": iso_time(attributes.get("deployedTime")),
                           "entity_status": found.entity.status}
    return result


def _schema_versions(client, topic_guids: list[str]) -> dict[str, list[int]]:
    """guid of a kafka_topic -> the versions of the avro_schema entities linked to it now."""
    if not topic_guids:
        return {}
    topics = call(client, client.entity.get_entities_by_guids, topic_guids)
    schema_of: dict[str, str] = {}
    for topic in topics.entities or []:
        for schema in (topic.relationshipAttributes or {}).get("avroSchema") or []:
            schema_of[schema["guid"]] = topic.guid
    result: dict[str, list[int]] = {g: [] for g in topic_guids}
    if schema_of:
        for schema in call(client, client.entity.get_entities_by_guids, list(schema_of)).entities or []:
            if schema.attributes.get("versionId") is not None:
                result[schema_of[schema.guid]].append(int(schema.attributes["versionId"]))
    return {g: sorted(v) for g, v in result.items()}


def format_build(result: Mapping[str, Any]) -> str:
    b = result["build"]
    lines = [f"{b['name']} ({b['qualifiedName']}, {b['status']}, created {b['created']})",
             f"  code:      {result.get('code_version') or '(not recorded)'}"
             + (f" (spec {result['spec']})" if result.get("spec") else ""),
             f"  features:  {', '.join(result['features']) or '(not recorded)'}"
             + (f" (feature view {result['feature_view']})" if result.get("feature_view") else ""),
             f"  sampling:  {', '.join(f'{k}={v}' for k, v in result['sampling'].items()) or '(none recorded)'}"]
    for version_subject, versions in (result.get("schema_versions") or {}).items():
        lines.append(f"  schemas:   {version_subject} v{', v'.join(map(str, versions))}")
    for split in result["splits"]:
        ranges = ", ".join(f"{r['topic']}[{r['partition']}] {r['start']}..{r['end'] - 1}"
                           for r in split.get("records", []))
        examples = f", {split['examples']} examples" if "examples" in split else ""
        lines.append(f"  {split['name'] + ':':10} {split['fraction']}{examples}" + (f": {ranges}" if ranges else ""))
    if result.get("labels"):
        lines.append("  labels:    " + ", ".join(f"{r['topic']}[{r['partition']}] {r['start']}..{r['end'] - 1}"
                                                 for r in result["labels"]))
    if "splits" in result and not any("records" in s for s in result["splits"]):
        lines.append("  offsets:   not recorded (the build was declared in a lineage config, not made by "
                     "'mlstream train')")
    lines.append(f"  trained by: {', '.join(result['trained_by']) or '(no process in the lineage)'}")
    for dataset in result["datasets"]:
        schema = f"  schema v{', v'.join(map(str, dataset['schema_versions']))}" if dataset.get("schema_versions") \
            else ""
        lines.append(f"    <- {dataset['typeName']} {dataset['qualifiedName']}{schema}"
                     + ("" if dataset["status"] == "ACTIVE" else f"  [{dataset['status']}]"))
    lines.append("  served by:" + ("" if result["deployments"] else " (no deployment)"))
    for d in result["deployments"]:
        lines.append(f"    -> {d['qualifiedName']}  {d.get('status', '?')} since {d.get('deployed')}")
    return "\n".join(lines)


# ----- readers --------------------------------------------------------------------------------

def readers(client, name: str, namespace: str) -> dict:
    """Every process, model build and deployment downstream of a dataset (a topic, a table)."""
    entity = find_entity(client, name, namespace)
    lineage = call(client, client.lineage.get_lineage_info, entity["guid"], "OUTPUT", READERS_DEPTH)
    headers = {g: dict(h) for g, h in (lineage.guidEntityMap or {}).items()}
    direct = {r.toEntityId for r in lineage.relations or [] if r.fromEntityId == entity["guid"]}
    inputs: dict[str, list[str]] = {}
    for r in lineage.relations or []:
        inputs.setdefault(r.toEntityId, []).append(r.fromEntityId)

    def row(guid: str) -> dict:
        header = headers[guid]
        return {"typeName": header["typeName"], "qualifiedName": header["attributes"]["qualifiedName"],
                "name": header.get("displayText"), "status": header.get("status"),
                "via": sorted(headers[g]["attributes"]["qualifiedName"] for g in inputs.get(guid, []))}

    def by_type(type_name: str) -> list[dict]:
        return sorted((row(g) for g, h in headers.items() if h["typeName"] == type_name),
                      key=lambda r: r["qualifiedName"])

    deployments = by_type(DEPLOYMENT)
    for deployment in deployments:
        found = call(client, client.entity.get_entity_by_attribute, DEPLOYMENT,
                     {"qualifiedName": deployment["qualifiedName"]})
        if found:
            attributes = found.entity.attributes
            deployment |= {"deployment_status": attributes.get("status"),
                           "build": _related_names((found.entity.relationshipAttributes or {}).get("build")),
                           "deployed": iso_time(attributes.get("deployedTime"))}
    return {"dataset": {"typeName": entity["typeName"], "qualifiedName": _name(entity), "status": entity.get("status")},
            "read_directly_by": sorted((row(g) for g in direct), key=lambda r: r["qualifiedName"]),
            "builds": by_type("ml_model_build"), "deployments": deployments,
            "downstream": sorted((row(g) for g in headers if g != entity["guid"]), key=lambda r: r["qualifiedName"])}


def format_readers(result: Mapping[str, Any]) -> str:
    d = result["dataset"]
    lines = [f"{d['typeName']} {d['qualifiedName']}" + ("" if d["status"] == "ACTIVE" else f"  [{d['status']}]")]

    def status(r: Mapping[str, Any]) -> str:
        return "" if r["status"] == "ACTIVE" else f"  [{r['status']}]"

    lines.append("read directly by:" + ("" if result["read_directly_by"] else " (nothing)"))
    lines += [f"  {r['typeName']} {r['qualifiedName']}{status(r)}" for r in result["read_directly_by"]]
    lines.append("model builds trained on it:" + ("" if result["builds"] else " (none)"))
    lines += [f"  {r['qualifiedName']} ({r['name']}) by {', '.join(r['via'])}{status(r)}" for r in result["builds"]]
    lines.append("deployments serving those builds:" + ("" if result["deployments"] else " (none)"))
    lines += [f"  {r['qualifiedName']}  {r.get('deployment_status', '?')} since {r.get('deployed')}, build "
              f"{', '.join(r.get('build') or ['?'])}{status(r)}" for r in result["deployments"]]
    return "\n".join(lines)


# ----- changes --------------------------------------------------------------------------------

def changes(client, name: str, namespace: str, *, last: int = 20) -> dict:
    """The entity's changes, newest last, each as before -> after; a deployment's deploy process's too."""
    entity = find_entity(client, name, namespace)
    result = {"entity": {"guid": entity["guid"], "typeName": entity["typeName"], "qualifiedName": _name(entity),
                         "status": entity.get("status")}, "changes": _entity_changes(client, entity, last)}
    if entity["typeName"] == DEPLOYMENT:
        process = call(client, client.entity.get_entity_by_attribute, "ml_model_deploy_process",
                       {"qualifiedName": f"{_name(entity)}/deploy"})
        if process:
            result["deploy_process"] = {"qualifiedName": _name(process.entity),
                                        "changes": _entity_changes(client, dict(process.entity), last)}
    return result


def _snapshot(event: Mapping[str, Any]) -> dict | None:
    """The entity an audit event carries: its ``entity``, or the JSON after "Updated: " in ``details`` (Atlas)."""
    if event.get("entity"):
        return dict(event["entity"])
    details = event.get("details") or ""
    prefix, sep, text = details.partition(": ")
    if sep and prefix in ("Created", "Updated", "Deleted") and text.startswith("{"):
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return None
    return None


def _entity_changes(client, entity: Mapping[str, Any], last: int) -> list[dict]:
    events = call(client, client.entity.get_audit_events, entity["guid"], None, None, max(last, 1) + 1) or []
    oldest_first = list(reversed(events))
    result, before = [], None
    for event in oldest_first:
        after = _snapshot(event)
        change: dict[str, Any] = {"time": iso_time(event.get("timestamp")), "action": event.get("action"),
                                  "user": event.get("user")}
        if after is not None and before is not None:
            # A relationship shown as an attribute too (Process.inputs) is compared once, as a relationship.
            shown_as_relationship = set(before.get("relationshipAttributes") or {}) | set(
                after.get("relationshipAttributes") or {})
            change["attributes"] = {k: v for k, v in _diff(_flat(before.get("attributes") or {}),
                                                            _flat(after.get("attributes") or {})).items()
                                    if k not in shown_as_relationship}
            relationships = {}
            for key in sorted(set(before.get("relationshipAttributes") or {}) | set(after.get("relationshipAttributes")
                                                                                    or {})):
                old = _related_names((before.get("relationshipAttributes") or {}).get(key))
                new = _related_names((after.get("relationshipAttributes") or {}).get(key))
                if old != new:
                    relationships[key] = {"before": old, "after": new}
            change["relationships"] = relationships
            if before.get("status") != after.get("status"):
                change["status"] = {"before": before.get("status"), "after": after.get("status")}
        elif event.get("action") not in ("ENTITY_CREATE",):
            change["details"] = event.get("details")
        result.append(change)
        if after is not None:
            before = after
    return result[-last:]


def _flat(attributes: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"metadata": {"build": "2"}}`` -> ``{"metadata.build": "2"}``: a map attribute compared key by key."""
    flat: dict[str, Any] = {}
    for key, value in attributes.items():
        if isinstance(value, Mapping) and not _is_reference(value):
            flat |= _flat(value, f"{prefix}{key}.")
        elif _is_reference(value) or (isinstance(value, list) and value and all(map(_is_reference, value))):
            flat[prefix + key] = _related_names(value)
        else:
            flat[prefix + key] = value
    return flat


def _diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, dict]:
    return {key: {"before": before.get(key), "after": after.get(key)} for key in sorted(set(before) | set(after))
            if before.get(key) != after.get(key)}


def format_changes(result: Mapping[str, Any]) -> str:
    e = result["entity"]
    lines = [f"{e['typeName']} {e['qualifiedName']}" + ("" if e["status"] == "ACTIVE" else f"  [{e['status']}]")]
    lines += _format_change_list(result["changes"], "  ")
    if "deploy_process" in result:
        lines.append(f"its deploy process {result['deploy_process']['qualifiedName']}:")
        lines += _format_change_list(result["deploy_process"]["changes"], "  ")
    return "\n".join(lines)


def _format_change_list(items: list[dict], indent: str) -> list[str]:
    lines = []
    for change in items:
        lines.append(f"{indent}{change['time']}  {change['action']}" + (f" by {change['user']}" if change["user"]
                                                                        else ""))
        for key, values in {**change.get("attributes", {}), **({"status": change["status"]} if "status" in change
                                                                else {})}.items():
            lines.append(f"{indent}    {key}: {_show(values['before'], key)} -> {_show(values['after'], key)}")
        for key, values in change.get("relationships", {}).items():
            lines.append(f"{indent}    {key}: {_show(values['before'])} -> {_show(values['after'])}")
        if change.get("details"):
            lines.append(f"{indent}    {change['details'][:200]}")
        if not any(change.get(k) for k in ("attributes", "relationships", "status", "details")) \
                and change["action"] != "ENTITY_CREATE":
            lines.append(f"{indent}    (no attribute or relationship changed)")
    return lines or [f"{indent}(no audit events)"]


def _show(value: Any, key: str = "") -> str:
    if value is None or value == []:
        return "(none)"
    if key.endswith(("Time", "At")) and str(value).isdigit() and int(value) > 10**11:  # a date: epoch ms
        return iso_time(int(value))
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return str(value)
