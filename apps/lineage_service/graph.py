"""The lineage graph of the embedded lineage service, kept in SQLite: Atlas's entity model in small.

``LineageGraph`` applies hook notifications (and REST entity writes) the way Atlas does:

* create-or-update by ``typeName`` + ``qualifiedName``: negative guids of a message get real
  ones, given attributes replace stored ones and the rest stay;
* a reference to an entity nobody created yet becomes a placeholder entity (as Atlas's hook
  consumer does), filled in when the entity itself arrives;
* a partial update changes only the attributes it carries; a delete marks the entity
  DELETED (a soft delete, like Atlas's default): it stays readable and in the lineage;
* every change is kept in an audit table (the entity after the change), so history is never
  lost.

Process inputs and outputs are also kept as edges, from which :meth:`lineage` answers
Atlas's ``/v2/lineage`` question (direction INPUT | OUTPUT | BOTH, depth in processes).

    >>> from mlstream.lineage import entities as e
    >>> from mlstream.lineage.hook import entity_create_v2
    >>> graph = LineageGraph(":memory:")
    >>> g = e.negative_guids()
    >>> src = e.kafka_topic("in", bootstrap_servers="b:9092", guid=next(g))
    >>> dst = e.kafka_topic("out", bootstrap_servers="b:9092", guid=next(g))
    >>> app = e.stream_process("app", [src], [dst], model_name="m", model_version="1", guid=next(g))
    >>> result = graph.apply(entity_create_v2([app], [src, dst], user="me"))
    >>> out = graph.entity_by_unique("kafka_topic", "out@primary")
    >>> lineage = graph.lineage(out["guid"], "INPUT", 3)
    >>> sorted(h["attributes"]["qualifiedName"] for h in lineage["guidEntityMap"].values())
    ['app@primary', 'in@primary', 'out@primary']
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from mlstream.lineage.typesystem import TypeSystem

SCHEMA = """
CREATE TABLE IF NOT EXISTS entities (
    guid TEXT PRIMARY KEY, type_name TEXT NOT NULL, qualified_name TEXT NOT NULL, status TEXT NOT NULL,
    attributes TEXT NOT NULL, relationship_attributes TEXT NOT NULL, placeholder INTEGER NOT NULL,
    create_time INTEGER NOT NULL, update_time INTEGER NOT NULL, created_by TEXT, updated_by TEXT,
    version INTEGER NOT NULL, UNIQUE (type_name, qualified_name));
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY, guid TEXT NOT NULL, version INTEGER NOT NULL, time INTEGER NOT NULL,
    user TEXT, action TEXT NOT NULL, entity TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS edges (
    process TEXT NOT NULL, dataset TEXT NOT NULL, direction TEXT NOT NULL, since INTEGER NOT NULL,
    PRIMARY KEY (process, dataset, direction));
CREATE TABLE IF NOT EXISTS typedefs (id INTEGER PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS consumed (topic TEXT PRIMARY KEY, next_offset INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS rejected (id INTEGER PRIMARY KEY, time INTEGER NOT NULL, reason TEXT NOT NULL,
    notification TEXT NOT NULL);
"""

INPUTS, OUTPUTS = "inputs", "outputs"


class EntityNotFound(LookupError):
    pass


class LineageGraph:
    """Entities, their history and process edges in one SQLite file; safe to share between threads."""

    def __init__(self, path: str, types: TypeSystem | None = None) -> None:
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(SCHEMA)
        self._lock = threading.RLock()
        self.types = types or TypeSystem.load()
        for (body,) in self._db.execute("SELECT body FROM typedefs ORDER BY id"):
            self.types.add_typedefs(json.loads(body), source="lineage database")

    # ----- writes -----------------------------------------------------------------------

    def apply(self, notification: Mapping[str, Any], *, consumed: tuple[str, int] | None = None) -> dict:
        """Apply one hook notification; with ``consumed`` (topic, next offset), record it in the same transaction.

        A notification that cannot be applied (a partial update of an unknown entity, an
        unknown type) is kept in the ``rejected`` table with the reason, not dropped.
        """
        with self._lock, self._db:
            self._db.execute("BEGIN")
            try:
                result = self._apply(notification)
            except (EntityNotFound, ValueError, KeyError, TypeError) as err:
                self._db.execute("INSERT INTO rejected (time, reason, notification) VALUES (?, ?, ?)",
                                 (_now(), f"{type(err).__name__}: {err}", json.dumps(notification)))
                result = {"rejected": str(err)}
            if consumed is not None:
                self._db.execute("INSERT INTO consumed VALUES (?, ?) ON CONFLICT(topic) DO UPDATE "
                                 "SET next_offset = excluded.next_offset", consumed)
            return result

    def reject(self, reason: str, raw: str, *, consumed: tuple[str, int] | None = None) -> None:
        """Keep a value that is not a usable notification (undecodable, a lost chunk), with the reason."""
        with self._lock, self._db:
            self._db.execute("BEGIN")
            self._db.execute("INSERT INTO rejected (time, reason, notification) VALUES (?, ?, ?)",
                             (_now(), reason, json.dumps(raw)))
            if consumed is not None:
                self._db.execute("INSERT INTO consumed VALUES (?, ?) ON CONFLICT(topic) DO UPDATE "
                                 "SET next_offset = excluded.next_offset", consumed)

    def _apply(self, note: Mapping[str, Any]) -> dict:
        user = note.get("user")
        kind = note.get("type")
        if kind in ("ENTITY_CREATE_V2", "ENTITY_FULL_UPDATE_V2"):
            return self._create_or_update(note["entities"], user)
        if kind == "ENTITY_PARTIAL_UPDATE_V2":
            entity_id = note["entityId"]
            return self._partial_update(entity_id["typeName"], entity_id["uniqueAttributes"]["qualifiedName"],
                                        note["entity"]["entity"], user)
        if kind == "ENTITY_DELETE_V2":
            deleted = [self._delete(e["typeName"], e["uniqueAttributes"]["qualifiedName"], user)
                       for e in note["entities"]]
            return {"mutatedEntities": {"DELETE": deleted}}
        raise ValueError(f"notification type {kind!r} is not supported")

    def create_entities(self, body: Mapping[str, Any], user: str | None = None) -> dict:
        """``POST /v2/entity/bulk``: create or update, all or nothing; raises EntityNotFound for a dangling reference."""
        with self._lock, self._db:
            self._db.execute("BEGIN")
            return self._create_or_update(body, user, placeholders=False)

    def partial_update(self, type_name: str, qualified_name: str, entity: Mapping[str, Any],
                       user: str | None = None) -> dict:
        with self._lock, self._db:
            self._db.execute("BEGIN")
            return self._partial_update(type_name, qualified_name, entity, user)

    def delete(self, type_name: str, qualified_name: str, user: str | None = None) -> dict:
        with self._lock, self._db:
            self._db.execute("BEGIN")
            return {"mutatedEntities": {"DELETE": [self._delete(type_name, qualified_name, user)]}}

    def _create_or_update(self, body: Mapping[str, Any], user: str | None, *, placeholders: bool = True) -> dict:
        entities = list(body.get("entities") or []) + list((body.get("referredEntities") or {}).values())
        assigned: dict[str, str] = {}
        for entity in entities:
            self._check_type(entity["typeName"])
            row = self._row(entity["typeName"], entity["attributes"]["qualifiedName"])
            assigned[entity["guid"]] = row["guid"] if row else str(uuid.uuid4())
        mutated: dict[str, list] = {"CREATE": [], "UPDATE": []}
        for entity in entities:
            guid = assigned[entity["guid"]]
            attributes = {k: self._resolve(v, assigned, user, placeholders) for k, v in entity["attributes"].items()}
            relationships = {k: self._resolve(v, assigned, user, placeholders)
                             for k, v in (entity.get("relationshipAttributes") or {}).items()}
            created = self._upsert(guid, entity["typeName"], attributes, relationships, user)
            mutated["CREATE" if created else "UPDATE"].append(self.header(guid))
        guid_assignments = {given: real for given, real in assigned.items() if given.startswith("-")}
        return {"mutatedEntities": {k: v for k, v in mutated.items() if v}, "guidAssignments": guid_assignments}

    def _resolve(self, value: Any, assigned: dict[str, str], user: str | None, placeholders: bool) -> Any:
        """Object ids in attribute values -> ids with the real guid (creating placeholders if allowed)."""
        if isinstance(value, list):
            return [self._resolve(v, assigned, user, placeholders) for v in value]
        if not (isinstance(value, Mapping) and "typeName" in value and ("guid" in value or "uniqueAttributes" in value)):
            return value
        guid = value.get("guid")
        if guid in assigned:
            guid = assigned[guid]
        elif guid is None or guid.startswith("-") or self._row_by_guid(guid) is None:
            qualified_name = (value.get("uniqueAttributes") or {}).get("qualifiedName")
            row = self._row(value["typeName"], qualified_name) if qualified_name else None
            if row is not None:
                guid = row["guid"]
            elif placeholders and qualified_name:
                self._check_type(value["typeName"])
                guid = str(uuid.uuid4())
                self._insert(guid, value["typeName"], {"qualifiedName": qualified_name}, {}, user, placeholder=True)
            else:
                raise EntityNotFound(f"referenced entity {value['typeName']} {qualified_name or guid} does not exist")
        # The entity may be one of this message's, not stored yet: its reference carries the name.
        qualified_name = (value.get("uniqueAttributes") or {}).get("qualifiedName") \
            or self._row_by_guid(guid)["qualified_name"]
        reference = {"guid": guid, "typeName": value["typeName"], "uniqueAttributes": {"qualifiedName": qualified_name}}
        if "relationshipType" in value:
            reference["relationshipType"] = value["relationshipType"]
        return reference

    def _upsert(self, guid: str, type_name: str, attributes: dict, relationships: dict, user: str | None) -> bool:
        row = self._row_by_guid(guid)
        if row is None:
            self._insert(guid, type_name, attributes, relationships, user, placeholder=False)
            self._update_edges(guid, type_name, attributes, relationships)
            return True
        merged_attributes = {**json.loads(row["attributes"]), **attributes}
        merged_relationships = {**json.loads(row["relationship_attributes"]), **relationships}
        self._db.execute(
            "UPDATE entities SET attributes = ?, relationship_attributes = ?, status = 'ACTIVE', placeholder = 0, "
            "update_time = ?, updated_by = ?, version = version + 1 WHERE guid = ?",
            (json.dumps(merged_attributes), json.dumps(merged_relationships), _now(), user, guid))
        self._update_edges(guid, type_name, attributes, relationships)
        self._audit(guid, "ENTITY_UPDATE", user)
        return bool(row["placeholder"])

    def _insert(self, guid: str, type_name: str, attributes: dict, relationships: dict, user: str | None,
                *, placeholder: bool) -> None:
        now = _now()
        self._db.execute("INSERT INTO entities VALUES (?, ?, ?, 'ACTIVE', ?, ?, ?, ?, ?, ?, ?, 1)",
                         (guid, type_name, attributes["qualifiedName"], json.dumps(attributes),
                          json.dumps(relationships), int(placeholder), now, now, user, user))
        self._audit(guid, "ENTITY_CREATE", user)

    def _update_edges(self, guid: str, type_name: str, attributes: dict, relationships: dict) -> None:
        if not self.types.is_subtype(type_name, "Process"):
            return
        for name, direction in ((INPUTS, "INPUT"), (OUTPUTS, "OUTPUT")):
            references = relationships.get(name, attributes.get(name))
            if references is None:
                continue
            # Replace the edges the process reports now; audit rows keep the earlier ones.
            self._db.execute("DELETE FROM edges WHERE process = ? AND direction = ?", (guid, direction))
            self._db.executemany("INSERT OR IGNORE INTO edges VALUES (?, ?, ?, ?)",
                                 [(guid, r["guid"], direction, _now()) for r in references])

    def _partial_update(self, type_name: str, qualified_name: str, entity: Mapping[str, Any], user) -> dict:
        row = self._row(type_name, qualified_name)
        if row is None:
            raise EntityNotFound(f"{type_name} {qualified_name} does not exist: nothing to update")
        attributes = {k: self._resolve(v, {}, user, True) for k, v in (entity.get("attributes") or {}).items()}
        relationships = {k: self._resolve(v, {}, user, True)
                         for k, v in (entity.get("relationshipAttributes") or {}).items()}
        self._upsert(row["guid"], type_name, attributes, relationships, user)
        return {"mutatedEntities": {"PARTIAL_UPDATE": [self.header(row["guid"])]}}

    def _delete(self, type_name: str, qualified_name: str, user: str | None) -> dict:
        row = self._row(type_name, qualified_name)
        if row is None:
            raise EntityNotFound(f"{type_name} {qualified_name} does not exist: nothing to delete")
        self._db.execute("UPDATE entities SET status = 'DELETED', update_time = ?, updated_by = ?, "
                         "version = version + 1 WHERE guid = ?", (_now(), user, row["guid"]))
        self._audit(row["guid"], "ENTITY_DELETE", user)
        return self.header(row["guid"])

    def _audit(self, guid: str, action: str, user: str | None) -> None:
        entity = self.entity(guid)["entity"]
        self._db.execute("INSERT INTO audit (guid, version, time, user, action, entity) VALUES (?, ?, ?, ?, ?, ?)",
                         (guid, entity["version"], _now(), user, action, json.dumps(entity)))

    def add_typedefs(self, body: Mapping[str, Any]) -> dict:
        """``POST /v2/types/typedefs``; raises TypeDefError if a name exists (Atlas answers 409)."""
        with self._lock, self._db:
            self.types.add_typedefs(body, source="POST /v2/types/typedefs")
            self._db.execute("INSERT INTO typedefs (body) VALUES (?)", (json.dumps(body),))
        return dict(body)

    def _check_type(self, type_name: str) -> None:
        if type_name not in self.types.entity_defs:
            raise ValueError(f"unknown entity type {type_name!r}; register it with POST /v2/types/typedefs")

    # ----- reads ------------------------------------------------------------------------

    def _row(self, type_name: str, qualified_name: str) -> sqlite3.Row | None:
        return self._db.execute("SELECT * FROM entities WHERE type_name = ? AND qualified_name = ?",
                                (type_name, qualified_name)).fetchone()

    def _row_by_guid(self, guid: str) -> sqlite3.Row | None:
        return self._db.execute("SELECT * FROM entities WHERE guid = ?", (guid,)).fetchone()

    def entity(self, guid: str) -> dict:
        """``GET /v2/entity/guid/{guid}``: an AtlasEntityWithExtInfo."""
        with self._lock:
            row = self._row_by_guid(guid)
            if row is None:
                raise EntityNotFound(f"no entity with guid {guid}")
            return {"entity": {
                "typeName": row["type_name"], "guid": row["guid"], "status": row["status"],
                "attributes": json.loads(row["attributes"]),
                "relationshipAttributes": json.loads(row["relationship_attributes"]),
                "createdBy": row["created_by"], "updatedBy": row["updated_by"],
                "createTime": row["create_time"], "updateTime": row["update_time"], "version": row["version"],
                "isIncomplete": bool(row["placeholder"]), "classifications": [], "labels": []},
                "referredEntities": {}}

    def entity_by_unique(self, type_name: str, qualified_name: str) -> dict:
        """``GET /v2/entity/uniqueAttribute/type/{type}?attr:qualifiedName=``: the entity (without ext info)."""
        with self._lock:
            row = self._row(type_name, qualified_name)
            if row is None:
                raise EntityNotFound(f"no {type_name} with qualifiedName {qualified_name}")
            return self.entity(row["guid"])["entity"]

    def history(self, guid: str) -> list[dict]:
        """Every state the entity had, oldest first (``GET /v2/entity/{guid}/audit`` in spirit)."""
        with self._lock:
            rows = self._db.execute("SELECT time, user, action, entity FROM audit WHERE guid = ? ORDER BY id",
                                    (guid,)).fetchall()
        return [{"timestamp": t, "user": u, "action": a, "entity": json.loads(e)} for t, u, a, e in rows]

    def header(self, guid: str) -> dict:
        row = self._row_by_guid(guid)
        attributes = json.loads(row["attributes"])
        shown = {k: attributes[k] for k in ("qualifiedName", "name", "owner", "description") if k in attributes}
        return {"guid": guid, "typeName": row["type_name"], "status": row["status"], "attributes": shown,
                "displayText": attributes.get("name") or attributes["qualifiedName"],
                "classificationNames": [], "labels": [], "isIncomplete": bool(row["placeholder"])}

    def edges(self, guid: str) -> list[tuple[str, str, str, int]]:
        """(process, dataset, direction, since) for every edge touching ``guid``."""
        with self._lock:
            return self._db.execute("SELECT process, dataset, direction, since FROM edges "
                                    "WHERE process = ? OR dataset = ?", (guid, guid)).fetchall()

    def lineage(self, guid: str, direction: str = "BOTH", depth: int = 3) -> dict:
        """``GET /v2/lineage/{guid}``: AtlasLineageInfo. One level of depth is one process."""
        direction = direction.upper()
        if direction not in ("INPUT", "OUTPUT", "BOTH"):
            raise ValueError(f"direction must be INPUT, OUTPUT or BOTH, not {direction!r}")
        with self._lock:
            if self._row_by_guid(guid) is None:
                raise EntityNotFound(f"no entity with guid {guid}")
            nodes, relations = {guid}, {}
            for way in (("INPUT", "OUTPUT") if direction == "BOTH" else (direction,)):
                self._walk(guid, way, depth, nodes, relations)
            return {"baseEntityGuid": guid, "lineageDirection": direction, "lineageDepth": depth,
                    "guidEntityMap": {g: self.header(g) for g in sorted(nodes)},
                    "relations": [{"fromEntityId": f, "toEntityId": t, "relationshipId": rid}
                                  for (f, t), rid in sorted(relations.items())]}

    def _walk(self, start: str, way: str, depth: int, nodes: set, relations: dict) -> None:
        # INPUT walks upstream: dataset <-(output of)- process <-(input of)- dataset ...
        is_process = self.types.is_subtype(self._row_by_guid(start)["type_name"], "Process")
        frontier = {start}
        # A level of depth is one process with its datasets: a process starts with its own datasets.
        for level in range(depth * 2 - int(is_process)):
            hop_from_process = is_process == (level % 2 == 0)
            following = set()
            for node in frontier:
                if hop_from_process:
                    wanted = "INPUT" if way == "INPUT" else "OUTPUT"
                    query = "SELECT dataset FROM edges WHERE process = ? AND direction = ?"
                else:
                    wanted = "OUTPUT" if way == "INPUT" else "INPUT"
                    query = "SELECT process FROM edges WHERE dataset = ? AND direction = ?"
                for (other,) in self._db.execute(query, (node, wanted)).fetchall():
                    process, dataset = (node, other) if hop_from_process else (other, node)
                    edge = (dataset, process) if wanted == "INPUT" else (process, dataset)
                    relations[edge] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{wanted}:{process}:{dataset}"))
                    if other not in nodes:
                        nodes.add(other)
                        following.add(other)
            frontier = following
            if not frontier:
                return

    def next_offset(self, topic: str) -> int | None:
        with self._lock:
            row = self._db.execute("SELECT next_offset FROM consumed WHERE topic = ?", (topic,)).fetchone()
        return row[0] if row else None

    def rejected(self) -> list[dict]:
        with self._lock:
            rows = self._db.execute("SELECT time, reason, notification FROM rejected ORDER BY id").fetchall()
        return [{"time": t, "reason": r, "notification": json.loads(n)} for t, r, n in rows]

    def find(self, text: str) -> list[dict]:
        """Headers of entities whose qualifiedName or guid is ``text`` (or whose qualifiedName starts with it)."""
        with self._lock:
            rows = self._db.execute("SELECT guid FROM entities WHERE guid = ? OR qualified_name = ? OR "
                                    "qualified_name LIKE ? ORDER BY qualified_name", (text, text, f"{text}@%"))
            return [self.header(g) for (g,) in rows.fetchall()]


def _now() -> int:
    return time.time_ns() // 1_000_000


def qualified_names(headers: Iterable[Mapping[str, Any]]) -> list[str]:
    return sorted(h["attributes"]["qualifiedName"] for h in headers)
