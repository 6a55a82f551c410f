"""The lineage graph of the embedded lineage service, kept in SQLite: Atlas's entity model in small.

``LineageGraph`` applies hook notifications (and REST entity writes) by Atlas's rules:

* create-or-update by ``typeName`` + ``qualifiedName``: negative guids of a message get real
  ones, given attributes replace stored ones and the rest stay; an update that changes
  nothing is not an update (no new version, no audit event), as Atlas compares first;
* an entity must fit its type (Atlas's typedefs, ``mlstream.lineage.typesystem``); attributes
  and fields the type does not define are dropped, as Atlas's JSON reader and type system do;
* a reference to an entity nobody created yet becomes a placeholder (Atlas's shell entity,
  ``isIncomplete``), filled in when the entity itself arrives; over REST it is an error;
* a reference in a relationship attribute (``inputs``, ``build``, ``avroSchema``...) is a
  relationship with its own guid, ends and status. Setting the attribute again replaces its
  relationships: the ones left out become DELETED (Atlas's soft delete of the edge);
* a delete marks the entity DELETED (a soft delete, Atlas's default) with its relationships,
  and the entities it contains (COMPOSITION children such as a table's columns); it stays
  readable and in the lineage, and its qualifiedName is free for a new entity (new guid);
* every change is kept in an audit table (Atlas's EntityAuditEventV2 with the entity after
  the change), so history is never lost.

Lineage (Atlas's ``/v2/lineage``, direction INPUT | OUTPUT | BOTH, depth in processes) follows
the ``dataset_process_inputs`` and ``process_dataset_outputs`` relationships each process
reports now, deleted entities included.

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
    >>> [r["typeName"] for r in graph.relationships_of(out["guid"])]
    ['process_dataset_outputs']
"""

from __future__ import annotations

import copy
import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from apps.lineage_service.errors import AtlasError, BadRequest, EntityNotFound
from mlstream.lineage.typesystem import ENTITY_FIELDS, RelationshipEnd, TypeDefError, TypeSystem

SCHEMA_VERSION = 2
SCHEMA = """
CREATE TABLE IF NOT EXISTS entities (
    guid TEXT PRIMARY KEY, type_name TEXT NOT NULL, qualified_name TEXT NOT NULL, status TEXT NOT NULL,
    attributes TEXT NOT NULL, labels TEXT NOT NULL, placeholder INTEGER NOT NULL,
    create_time INTEGER NOT NULL, update_time INTEGER NOT NULL, created_by TEXT, updated_by TEXT,
    version INTEGER NOT NULL);
-- Atlas: a qualifiedName is unique among the type's entities that are not deleted (a soft delete frees it).
CREATE UNIQUE INDEX IF NOT EXISTS entities_unique ON entities (type_name, qualified_name) WHERE status != 'DELETED';
CREATE INDEX IF NOT EXISTS entities_name ON entities (qualified_name);
CREATE TABLE IF NOT EXISTS relationships (
    guid TEXT PRIMARY KEY, type_name TEXT NOT NULL, end1 TEXT NOT NULL, end2 TEXT NOT NULL, status TEXT NOT NULL,
    superseded INTEGER NOT NULL, create_time INTEGER NOT NULL, update_time INTEGER NOT NULL,
    created_by TEXT, updated_by TEXT, version INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS relationships_end1 ON relationships (end1, type_name);
CREATE INDEX IF NOT EXISTS relationships_end2 ON relationships (end2, type_name);
CREATE TABLE IF NOT EXISTS classifications (
    entity_guid TEXT NOT NULL, type_name TEXT NOT NULL, attributes TEXT NOT NULL, propagate INTEGER NOT NULL,
    remove_propagations INTEGER NOT NULL, validity_periods TEXT NOT NULL, PRIMARY KEY (entity_guid, type_name));
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY, guid TEXT NOT NULL, version INTEGER NOT NULL, time INTEGER NOT NULL,
    user TEXT, action TEXT NOT NULL, details TEXT NOT NULL, entity TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS audit_guid ON audit (guid);
CREATE TABLE IF NOT EXISTS typedefs (id INTEGER PRIMARY KEY, operation TEXT NOT NULL, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS consumed (topic TEXT PRIMARY KEY, next_offset INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS rejected (id INTEGER PRIMARY KEY, time INTEGER NOT NULL, reason TEXT NOT NULL,
    notification TEXT NOT NULL);
"""

ACTIVE, DELETED = "ACTIVE", "DELETED"
INPUTS, OUTPUTS = "dataset_process_inputs", "process_dataset_outputs"  # end1: the Process, end2: the DataSet
TERM_ASSIGNMENT = "AtlasGlossarySemanticAssignment"                     # end1: the term, end2: the entity
HEADER_ATTRIBUTES = ("qualifiedName", "name", "owner", "description")
_AUDIT_PREFIX = {"ENTITY_CREATE": "Created: ", "ENTITY_UPDATE": "Updated: ", "ENTITY_DELETE": "Deleted: ",
                 "CLASSIFICATION_ADD": "Added classification: ", "CLASSIFICATION_UPDATE": "Updated classification: ",
                 "CLASSIFICATION_DELETE": "Deleted classification: ", "TERM_ADD": "Added term: ",
                 "TERM_DELETE": "Deleted term: ", "LABEL_ADD": "Added labels: ", "LABEL_DELETE": "Deleted labels: "}
#: Attribute types the update-one-attribute call takes (AtlasEntityStoreV2.updateEntityAttributeByGuid:
#: primitives and object ids only).
_PRIMITIVES = frozenset({"boolean", "byte", "short", "int", "long", "float", "double", "biginteger", "bigdecimal",
                         "string", "date"})


def open_database(path: str) -> sqlite3.Connection:
    """The SQLite connection for ``path``; a file of an older schema is moved aside, not misread.

    The graph is rebuilt from the hook topic: the consumer's stored offsets go with the old file.
    """
    if path != ":memory:" and Path(path).exists():
        old = sqlite3.connect(path)
        try:
            version = old.execute("PRAGMA user_version").fetchone()[0]
            has_tables = old.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0]
        finally:
            old.close()
        if has_tables and version != SCHEMA_VERSION:
            for suffix in ("", "-wal", "-shm"):
                if Path(path + suffix).exists():
                    Path(path + suffix).rename(f"{path}.schema{version}{suffix}")
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    db.row_factory = sqlite3.Row
    db.execute("PRAGMA journal_mode=WAL")
    db.executescript(SCHEMA)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    return db


class LineageGraph:
    """Entities, relationships, classifications and their history in one SQLite file; safe to share between threads."""

    def __init__(self, path: str, types: TypeSystem | None = None) -> None:
        self._db = open_database(path)
        self._lock = threading.RLock()
        self.types = types or TypeSystem.load()
        for operation, body in self._db.execute("SELECT operation, body FROM typedefs ORDER BY id"):
            getattr(self.types, f"{operation}_typedefs")(json.loads(body), source="lineage database")
        self._ends: dict[str, dict[str, list[RelationshipEnd]]] = {}

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        with self._lock, self._db:
            self._db.execute("BEGIN")
            yield

    # ----- hook notifications -----------------------------------------------------------

    def apply(self, notification: Mapping[str, Any], *, consumed: tuple[str, int] | None = None) -> dict:
        """Apply one hook notification; with ``consumed`` (topic, next offset), record it in the same transaction.

        A notification that cannot be applied (a partial update of an unknown entity, an
        entity that does not fit its type) is kept in the ``rejected`` table with the reason,
        not dropped; nothing of it is applied.
        """
        with self._lock:
            try:
                with self._transaction():
                    result = self._apply(notification)
                    self._consumed(consumed)
                    return result
            except (AtlasError, ValueError, KeyError, TypeError) as err:
                reason = err.message if isinstance(err, AtlasError) else f"{type(err).__name__}: {err}"
                self._reject(reason, notification, consumed)
                return {"rejected": reason}

    def reject(self, reason: str, raw: str, *, consumed: tuple[str, int] | None = None) -> None:
        """Keep a value that is not a usable notification (undecodable, a lost chunk), with the reason."""
        self._reject(reason, raw, consumed)

    def _reject(self, reason: str, notification: Any, consumed: tuple[str, int] | None) -> None:
        with self._transaction():
            self._db.execute("INSERT INTO rejected (time, reason, notification) VALUES (?, ?, ?)",
                             (_now(), reason, json.dumps(notification)))
            self._consumed(consumed)

    def _consumed(self, consumed: tuple[str, int] | None) -> None:
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
            row = self._unique_row(entity_id["typeName"], entity_id["uniqueAttributes"]["qualifiedName"])
            return self._partial_update(row, note["entity"]["entity"], user)
        if kind == "ENTITY_DELETE_V2":
            deleted = [header for e in note["entities"] for header in
                       self._delete(self._unique_row(e["typeName"], e["uniqueAttributes"]["qualifiedName"]), user)]
            return {"mutatedEntities": {"DELETE": deleted}}
        raise BadRequest("BAD_REQUEST", f"notification type {kind!r} is not supported")

    # ----- entity writes (REST) ---------------------------------------------------------

    def create_entities(self, body: Mapping[str, Any], user: str | None = None) -> dict:
        """``POST /v2/entity/bulk``: create or update, all or nothing; a dangling reference is an error."""
        with self._transaction():
            return self._create_or_update(body, user, placeholders=False)

    def partial_update(self, type_name: str, qualified_name: str, entity: Mapping[str, Any],
                       user: str | None = None) -> dict:
        """``PUT /v2/entity/uniqueAttribute/type/{type}``: change only what ``entity`` carries."""
        with self._transaction():
            return self._partial_update(self._unique_row(type_name, qualified_name), entity, user)

    def update_attribute(self, guid: str, name: str, value: Any, user: str | None = None) -> dict:
        """``PUT /v2/entity/guid/{guid}?name=``: set one primitive or object-id attribute, as Atlas allows."""
        with self._transaction():
            row = self._guid_row(guid)
            attribute = self.types.attribute_defs(row["type_name"]).get(name)
            ends = self._relationship_ends(row["type_name"]).get(name)
            if attribute is None and ends is None:
                raise BadRequest("UNKNOWN_ATTRIBUTE", name, row["type_name"])
            type_name = attribute["typeName"] if attribute else \
                ends[0].other_type if ends[0].cardinality == "SINGLE" else f"array<{ends[0].other_type}>"
            if type_name in _PRIMITIVES:
                update = {"attributes": {name: value}}
            elif type_name in self.types.entity_defs:
                update = {"relationshipAttributes" if ends else "attributes":
                          {name: {"guid": value} if isinstance(value, str) else value}}
            else:
                raise BadRequest("ATTRIBUTE_UPDATE_NOT_SUPPORTED", name, type_name)
            return self._partial_update(row, {"typeName": row["type_name"], **update}, user)

    def delete(self, type_name: str, qualified_name: str, user: str | None = None) -> dict:
        """``DELETE /v2/entity/uniqueAttribute/type/{type}``: a soft delete."""
        with self._transaction():
            return {"mutatedEntities": {"DELETE": self._delete(self._unique_row(type_name, qualified_name), user)}}

    def delete_guids(self, guids: Iterable[str], user: str | None = None) -> dict:
        """``DELETE /v2/entity/guid/{guid}`` and ``/v2/entity/bulk?guid=``: soft deletes.

        An unknown guid is skipped, as Atlas does: what the caller wanted gone is gone.
        """
        with self._transaction():
            deleted = [header for guid in guids if (row := self._row_by_guid(guid)) is not None
                       for header in self._delete(row, user)]
        return {"mutatedEntities": {"DELETE": deleted}} if deleted else {}

    def _create_or_update(self, body: Mapping[str, Any], user: str | None, *, placeholders: bool = True) -> dict:
        given = [*(body.get("entities") or []), *(body.get("referredEntities") or {}).values()]
        entities = [self._readable(entity) for entity in given]
        problems = self.types.validate_entities(entities)
        if problems:
            raise BadRequest("INSTANCE_CRUD_INVALID_PARAMS", "; ".join(problems))
        assigned: dict[str, str] = {}
        names: dict[str, tuple[str, str]] = {}  # guid -> (type, qualifiedName) of this message's entities
        items = []
        for entity in entities:
            key = (entity["typeName"], entity["attributes"]["qualifiedName"])
            row = self._current_row(*key)
            guid = row["guid"] if row else next((g for g, k in names.items() if k == key), str(uuid.uuid4()))
            if entity.get("guid"):
                assigned[entity["guid"]] = guid
            names[guid] = key
            items.append((guid, entity))
        changes = self._write(items, _Resolver(self, assigned, names, user, placeholders), user)
        mutated: dict[str, list] = {}
        for guid, change in changes.items():
            if change:
                mutated.setdefault(change, []).append(self.header(guid))
        guid_assignments = {given: real for given, real in assigned.items() if given.startswith("-")}
        return {"mutatedEntities": mutated, "guidAssignments": guid_assignments}

    def _partial_update(self, row: sqlite3.Row, entity: Mapping[str, Any], user: str | None) -> dict:
        entity = self._readable({**entity, "typeName": row["type_name"]})
        problems = self.types.validate_entity(entity, partial=True)
        if problems:
            raise BadRequest("INSTANCE_CRUD_INVALID_PARAMS", "; ".join(problems))
        changes = self._write([(row["guid"], entity)], _Resolver(self, {}, {}, user, True), user)
        return {"mutatedEntities": {"PARTIAL_UPDATE": [self.header(row["guid"])]}} if changes[row["guid"]] else {}

    def _readable(self, entity: Mapping[str, Any]) -> dict:
        """The entity as Atlas reads it: fields and attributes its type does not define are dropped."""
        if not isinstance(entity, Mapping) or not isinstance(entity.get("typeName"), str):
            raise BadRequest("INSTANCE_CRUD_INVALID_PARAMS", f"an entity needs a typeName: {entity!r:.200}")
        type_name = entity["typeName"]
        if type_name not in self.types.entity_defs:
            raise BadRequest("TYPE_NAME_INVALID", "ENTITY", type_name)
        readable = {k: v for k, v in entity.items() if k in ENTITY_FIELDS and v is not None}
        defs, ends = self.types.attribute_defs(type_name), self._relationship_ends(type_name)
        readable["attributes"] = {k: v for k, v in (entity.get("attributes") or {}).items()
                                  if k in defs or k in ends}
        readable["relationshipAttributes"] = {k: v for k, v in (entity.get("relationshipAttributes") or {}).items()
                                              if k in ends}
        return readable

    def _write(self, items: list[tuple[str, dict]], resolve: "_Resolver", user: str | None) -> dict[str, str | None]:
        """Create or update entities (guid, entity): guid -> 'CREATE', 'UPDATE' or None when nothing changed.

        Rows first, then relationships (they may point at any entity of the write), then the audit
        (each event holds the entity with its relationships).
        """
        planned = []
        for guid, entity in items:
            ends = self._relationship_ends(entity["typeName"])
            attributes, relationships = {}, dict(entity.get("relationshipAttributes") or {})
            for name, value in entity["attributes"].items():
                # A relationship end given as an attribute (Process.inputs) is a relationship, as in Atlas.
                if name in ends and (value is None or value == [] or _is_reference(value)):
                    relationships.setdefault(name, value)
                else:
                    attributes[name] = resolve(value)
            row = self._row_by_guid(guid)
            if row is None:
                now = _now()
                self._db.execute("INSERT INTO entities VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, 1)",
                                 (guid, entity["typeName"], attributes["qualifiedName"], ACTIVE,
                                  json.dumps(attributes), json.dumps(sorted(set(entity.get("labels") or []))),
                                  now, now, user, user))
            planned.append((guid, entity, relationships, row, attributes))
        changes: dict[str, str | None] = {}
        for guid, entity, relationships, row, attributes in planned:
            changed = False
            for name, value in relationships.items():
                changed |= self._set_relationships(guid, entity["typeName"], name, value, resolve, user)
            changed |= self._upsert_classifications(guid, entity.get("classifications") or [])
            if row is None:
                changes[guid] = "CREATE"
                continue
            stored, labels = json.loads(row["attributes"]), json.loads(row["labels"])
            merged = {**stored, **attributes}
            new_labels = sorted(set(labels) | set(entity.get("labels") or []))
            if changed or merged != stored or new_labels != labels or row["placeholder"]:
                self._db.execute("UPDATE entities SET attributes = ?, labels = ?, placeholder = 0, update_time = ?, "
                                 "updated_by = ?, version = version + 1 WHERE guid = ?",
                                 (json.dumps(merged), json.dumps(new_labels), _now(), user, guid))
                changes[guid] = "CREATE" if row["placeholder"] else "UPDATE"
            else:
                changes[guid] = None
        for guid, change in changes.items():
            if change:
                self._audit(guid, "ENTITY_CREATE" if change == "CREATE" else "ENTITY_UPDATE", user)
        return changes

    def _insert_placeholder(self, type_name: str, qualified_name: str, user: str | None) -> str:
        guid, now = str(uuid.uuid4()), _now()
        self._db.execute("INSERT INTO entities VALUES (?, ?, ?, ?, ?, '[]', 1, ?, ?, ?, ?, 1)",
                         (guid, type_name, qualified_name, ACTIVE, json.dumps({"qualifiedName": qualified_name}),
                          now, now, user, user))
        self._audit(guid, "ENTITY_CREATE", user)
        return guid

    def _delete(self, row: sqlite3.Row, user: str | None) -> list[dict]:
        """Soft-delete an entity, its relationships and the entities it contains; their headers."""
        if row["status"] == DELETED:
            return []
        guid, now = row["guid"], _now()
        self._db.execute("UPDATE entities SET status = ?, update_time = ?, updated_by = ?, version = version + 1 "
                         "WHERE guid = ?", (DELETED, now, user, guid))
        children = []
        for relationship in self._current_relationships(guid):
            if relationship["status"] == ACTIVE:
                self._end_relationship(relationship["guid"], user, superseded=False)
            definition = self.types.relationship_defs.get(relationship["type_name"], {})
            own_end = "endDef1" if relationship["end1"] == guid else "endDef2"
            if definition.get("relationshipCategory") == "COMPOSITION" and definition[own_end].get("isContainer"):
                children.append(relationship["end2"] if own_end == "endDef1" else relationship["end1"])
        self._audit(guid, "ENTITY_DELETE", user)
        deleted = [self.header(guid)]
        for child in children:
            deleted += self._delete(self._row_by_guid(child), user)
        return deleted

    # ----- relationships ----------------------------------------------------------------

    def _relationship_ends(self, type_name: str) -> dict[str, list[RelationshipEnd]]:
        if type_name not in self._ends:
            self._ends[type_name] = self.types.relationship_ends(type_name)
        return self._ends[type_name]

    def _set_relationships(self, guid: str, type_name: str, name: str, value: Any, resolve: "_Resolver",
                           user: str | None) -> bool:
        """Make relationship attribute ``name`` hold exactly ``value``; True if that changed anything."""
        ends = self._relationship_ends(type_name)[name]
        wanted: dict[tuple[str, str], RelationshipEnd] = {}
        for reference in value if isinstance(value, list) else ([] if value is None else [value]):
            other = resolve.guid(reference)
            end = self._end_for(ends, reference, resolve.type_of(other), name)
            wanted[(end.relationship, other)] = end
        current = {}
        for end in ends:
            own, other_end = ("end1", "end2") if end.end == 1 else ("end2", "end1")
            for rel in self._db.execute(f"SELECT guid, {other_end} AS other FROM relationships WHERE {own} = ? "
                                        "AND type_name = ? AND superseded = 0", (guid, end.relationship)):
                current[(end.relationship, rel["other"])] = rel["guid"]
        for key in current.keys() - wanted.keys():
            self._end_relationship(current[key], user, superseded=True)
        for relationship, other in wanted.keys() - current.keys():
            end = wanted[(relationship, other)]
            ends_in_order = (guid, other) if end.end == 1 else (other, guid)
            now = _now()
            self._db.execute("INSERT INTO relationships VALUES (?, ?, ?, ?, ?, 0, ?, ?, ?, ?, 1)",
                             (str(uuid.uuid4()), relationship, *ends_in_order, ACTIVE, now, now, user, user))
        return current.keys() != wanted.keys()

    def _end_for(self, ends: list[RelationshipEnd], reference: Mapping[str, Any], other_type: str,
                 name: str) -> RelationshipEnd:
        wanted_type = reference.get("relationshipType")
        for end in ends:
            if wanted_type in (None, end.relationship) and self.types.is_subtype(other_type, end.other_type):
                return end
        raise BadRequest("INSTANCE_CRUD_INVALID_PARAMS", f"{name}: no relationship {wanted_type or ''} links "
                         f"to a {other_type} (expected {', '.join(sorted({e.other_type for e in ends}))})")

    def _end_relationship(self, guid: str, user: str | None, *, superseded: bool) -> None:
        self._db.execute("UPDATE relationships SET status = ?, superseded = superseded OR ?, update_time = ?, "
                         "updated_by = ?, version = version + 1 WHERE guid = ?",
                         (DELETED, int(superseded), _now(), user, guid))

    def _current_relationships(self, guid: str) -> list[sqlite3.Row]:
        """The relationships ``guid`` is an end of now (ACTIVE, or DELETED with an end); not the replaced ones."""
        return self._db.execute("SELECT * FROM relationships WHERE (end1 = ? OR end2 = ?) AND superseded = 0 "
                                "ORDER BY create_time, rowid", (guid, guid)).fetchall()

    def relationships_of(self, guid: str) -> list[dict]:
        """Every relationship ``guid`` ever was an end of, replaced ones included (AtlasRelationship)."""
        with self._lock:
            # rowid: in the order they were made; two made in the same millisecond were ordered by their random guids
            rows = self._db.execute("SELECT * FROM relationships WHERE end1 = ? OR end2 = ? ORDER BY create_time, "
                                    "rowid", (guid, guid)).fetchall()
            return [self._relationship_json(row) for row in rows]

    def relationship(self, guid: str) -> dict:
        """``GET /v2/relationship/guid/{guid}``: AtlasRelationshipWithExtInfo, its ends' headers as referredEntities."""
        with self._lock:
            row = self._db.execute("SELECT * FROM relationships WHERE guid = ?", (guid,)).fetchone()
            if row is None:
                raise EntityNotFound("RELATIONSHIP_GUID_NOT_FOUND", guid)
            return {"relationship": self._relationship_json(row),
                    "referredEntities": {g: self.header(g) for g in (row["end1"], row["end2"])}}

    def create_relationship(self, body: Mapping[str, Any], user: str | None = None) -> dict:
        """``POST /v2/relationship``: an AtlasRelationship between two existing entities."""
        with self._transaction():
            type_name = body.get("typeName") if isinstance(body, Mapping) else None
            definition = self.types.relationship_defs.get(type_name)
            if definition is None:
                raise BadRequest("TYPE_NAME_INVALID", "RELATIONSHIP", type_name)
            resolve = _Resolver(self, {}, {}, user, placeholders=False)
            ends = [resolve.guid(body.get(end) or {}) for end in ("end1", "end2")]
            for guid, end in zip(ends, (definition["endDef1"], definition["endDef2"]), strict=True):
                if not self.types.is_subtype(resolve.type_of(guid), end["type"]):
                    raise BadRequest("INSTANCE_CRUD_INVALID_PARAMS", f"{type_name}: {guid} is a "
                                     f"{resolve.type_of(guid)}, not a {end['type']}")
            if self._db.execute("SELECT 1 FROM relationships WHERE type_name = ? AND end1 = ? AND end2 = ? AND "
                                "status = ?", (type_name, *ends, ACTIVE)).fetchone():
                raise AtlasError("RELATIONSHIP_ALREADY_EXISTS", type_name, *ends)
            guid, now = str(uuid.uuid4()), _now()
            self._db.execute("INSERT INTO relationships VALUES (?, ?, ?, ?, ?, 0, ?, ?, ?, ?, 1)",
                             (guid, type_name, *ends, ACTIVE, now, now, user, user))
            return self.relationship(guid)["relationship"]

    def delete_relationship(self, guid: str, user: str | None = None) -> None:
        """``DELETE /v2/relationship/guid/{guid}``: DELETED, and no longer one of its ends' relationships."""
        with self._transaction():
            if self._db.execute("SELECT 1 FROM relationships WHERE guid = ?", (guid,)).fetchone() is None:
                raise EntityNotFound("RELATIONSHIP_GUID_NOT_FOUND", guid)
            self._end_relationship(guid, user, superseded=True)

    def _relationship_json(self, row: sqlite3.Row) -> dict:
        definition = self.types.relationship_defs.get(row["type_name"], {})
        return {"typeName": row["type_name"], "guid": row["guid"], "status": row["status"],
                "end1": self._object_id(row["end1"]), "end2": self._object_id(row["end2"]),
                "label": self._relationship_label(row["type_name"]),
                "propagateTags": definition.get("propagateTags", "NONE"), "attributes": {},
                "createdBy": row["created_by"], "updatedBy": row["updated_by"], "createTime": row["create_time"],
                "updateTime": row["update_time"], "version": row["version"], "provenanceType": 0,
                "propagatedClassifications": [], "blockedPropagatedClassifications": []}

    def _relationship_label(self, type_name: str) -> str:
        # AtlasRelationshipType: the def's relationshipLabel; an end that is also a (legacy) attribute of
        # its type keeps that attribute's edge label "__<type>.<attribute>"; otherwise "r:<name>".
        definition = self.types.relationship_defs.get(type_name, {})
        if definition.get("relationshipLabel"):
            return definition["relationshipLabel"]
        for end in (definition.get("endDef1"), definition.get("endDef2")):
            if end and end["name"] in {a["name"] for a in
                                       self.types.entity_defs.get(end["type"], {}).get("attributeDefs") or []}:
                return f"__{end['type']}.{end['name']}"
        return f"r:{type_name}"

    # ----- classifications and labels ---------------------------------------------------

    def _upsert_classifications(self, guid: str, classifications: Iterable[Mapping[str, Any]]) -> bool:
        changed = False
        for classification in classifications:
            name = classification.get("typeName")
            if name not in self.types.classification_defs:
                raise EntityNotFound("CLASSIFICATION_NOT_FOUND", name)
            values = (json.dumps(classification.get("attributes") or {}), int(classification.get("propagate", True)
                      is not False), int(bool(classification.get("removePropagationsOnEntityDelete"))),
                      json.dumps(classification.get("validityPeriods") or []))
            stored = self._db.execute("SELECT attributes, propagate, remove_propagations, validity_periods FROM "
                                      "classifications WHERE entity_guid = ? AND type_name = ?",
                                      (guid, name)).fetchone()
            if stored is None or tuple(stored) != values:
                self._db.execute("INSERT OR REPLACE INTO classifications VALUES (?, ?, ?, ?, ?, ?)",
                                 (guid, name, *values))
                changed = True
        return changed

    def add_classifications(self, guid: str, classifications: list[Mapping[str, Any]], user: str | None = None) -> None:
        """``POST /v2/entity/guid/{guid}/classifications``; one already there is an error, as in Atlas."""
        with self._transaction():
            self._guid_row(guid)
            for classification in classifications:
                name = classification.get("typeName")
                if self._db.execute("SELECT 1 FROM classifications WHERE entity_guid = ? AND type_name = ?",
                                    (guid, name)).fetchone():
                    raise BadRequest("CLASSIFICATION_ALREADY_ASSOCIATED", guid, name)
                self._upsert_classifications(guid, [classification])
                self._audit(guid, "CLASSIFICATION_ADD", user, detail=self._classification_json(guid, name))

    def update_classifications(self, guid: str, classifications: list[Mapping[str, Any]],
                               user: str | None = None) -> None:
        """``PUT /v2/entity/guid/{guid}/classifications``: change classifications the entity has."""
        with self._transaction():
            self._guid_row(guid)
            for classification in classifications:
                name = classification.get("typeName")
                if not self._db.execute("SELECT 1 FROM classifications WHERE entity_guid = ? AND type_name = ?",
                                        (guid, name)).fetchone():
                    raise EntityNotFound("CLASSIFICATION_NOT_FOUND", name)
                self._upsert_classifications(guid, [classification])
                self._audit(guid, "CLASSIFICATION_UPDATE", user, detail=self._classification_json(guid, name))

    def delete_classification(self, guid: str, name: str, user: str | None = None) -> None:
        """``DELETE /v2/entity/guid/{guid}/classification/{name}``."""
        with self._transaction():
            self._guid_row(guid)
            if not self._db.execute("DELETE FROM classifications WHERE entity_guid = ? AND type_name = ?",
                                    (guid, name)).rowcount:
                raise EntityNotFound("CLASSIFICATION_NOT_FOUND", name)
            self._audit(guid, "CLASSIFICATION_DELETE", user, detail=name)

    def classifications(self, guid: str) -> list[dict]:
        """``GET /v2/entity/guid/{guid}/classifications`` (the list of an AtlasClassifications)."""
        with self._lock:
            self._guid_row(guid)
            return [self._classification_json(guid, name) for (name,) in self._db.execute(
                "SELECT type_name FROM classifications WHERE entity_guid = ? ORDER BY type_name", (guid,))]

    def _classification_json(self, guid: str, name: str) -> dict:
        row = self._db.execute("SELECT * FROM classifications WHERE entity_guid = ? AND type_name = ?",
                               (guid, name)).fetchone()
        if row is None:
            raise EntityNotFound("CLASSIFICATION_NOT_FOUND", name)
        return {"typeName": name, "attributes": json.loads(row["attributes"]), "entityGuid": guid,
                "entityStatus": self._row_by_guid(guid)["status"], "propagate": bool(row["propagate"]),
                "removePropagationsOnEntityDelete": bool(row["remove_propagations"]),
                "validityPeriods": json.loads(row["validity_periods"])}

    def change_labels(self, guid: str, labels: Iterable[str], how: str, user: str | None = None) -> None:
        """``/v2/entity/guid/{guid}/labels``: ``how`` is "set" (POST), "add" (PUT) or "remove" (DELETE)."""
        with self._transaction():
            row = self._guid_row(guid)
            before, given = set(json.loads(row["labels"])), set(labels)
            after = {"set": given, "add": before | given, "remove": before - given}[how]
            if after == before:
                return
            self._db.execute("UPDATE entities SET labels = ?, update_time = ?, updated_by = ?, version = version + 1 "
                             "WHERE guid = ?", (json.dumps(sorted(after)), _now(), user, guid))
            if after - before:
                self._audit(guid, "LABEL_ADD", user, detail=",".join(sorted(after - before)))
            if before - after:
                self._audit(guid, "LABEL_DELETE", user, detail=",".join(sorted(before - after)))

    # ----- glossary terms on entities (AtlasGlossarySemanticAssignment) ---------------------

    def assign_term(self, term_guid: str, entity_guids: Iterable[str], user: str | None = None) -> None:
        """``POST /v2/glossary/terms/{guid}/assignedEntities``: the term's meaning on each entity."""
        with self._transaction():
            term = self._guid_row(term_guid)
            for guid in entity_guids:
                self._guid_row(guid)
                if self._db.execute("SELECT 1 FROM relationships WHERE type_name = ? AND end1 = ? AND end2 = ? "
                                    "AND superseded = 0", (TERM_ASSIGNMENT, term_guid, guid)).fetchone():
                    continue
                now = _now()
                self._db.execute("INSERT INTO relationships VALUES (?, ?, ?, ?, ?, 0, ?, ?, ?, ?, 1)",
                                 (str(uuid.uuid4()), TERM_ASSIGNMENT, term_guid, guid, ACTIVE, now, now, user, user))
                self._audit(guid, "TERM_ADD", user, detail=term["qualified_name"])

    def unassign_term(self, term_guid: str, entity_guids: Iterable[str], user: str | None = None) -> None:
        """``PUT /v2/glossary/terms/{guid}/assignedEntities``: the assignments end (DELETED)."""
        with self._transaction():
            term = self._guid_row(term_guid)
            for guid in entity_guids:
                for (rel,) in self._db.execute("SELECT guid FROM relationships WHERE type_name = ? AND end1 = ? AND "
                                               "end2 = ? AND superseded = 0", (TERM_ASSIGNMENT, term_guid, guid)):
                    self._end_relationship(rel, user, superseded=True)
                    self._audit(guid, "TERM_DELETE", user, detail=term["qualified_name"])

    # ----- typedefs ---------------------------------------------------------------------

    def add_typedefs(self, body: Mapping[str, Any]) -> dict:
        """``POST /v2/types/typedefs``: all or nothing; a name that exists is TYPE_ALREADY_EXISTS (409)."""
        for kind, defs in body.items():
            for typedef in defs if isinstance(defs, list) else []:
                if self.types.find(typedef.get("name")) is not None:
                    raise AtlasError("TYPE_ALREADY_EXISTS", typedef.get("name"))
        return self._change_typedefs("add", body)

    def update_typedefs(self, body: Mapping[str, Any]) -> dict:
        """``PUT /v2/types/typedefs``: replace defs by name; a name not defined is TYPE_NAME_NOT_FOUND."""
        for kind, defs in body.items():
            for typedef in defs if isinstance(defs, list) else []:
                if self.types.find(typedef.get("name")) is None:
                    raise EntityNotFound("TYPE_NAME_NOT_FOUND", typedef.get("name"))
        return self._change_typedefs("update", body)

    def _change_typedefs(self, operation: str, body: Mapping[str, Any]) -> dict:
        candidate = copy.deepcopy(self.types)
        try:
            getattr(candidate, f"{operation}_typedefs")(body, source=f"{operation} typedefs")
            candidate.check_references()
        except (TypeDefError, KeyError, TypeError) as err:
            raise BadRequest("BAD_REQUEST", f"typedefs refused: {err}") from err
        with self._transaction():
            self._db.execute("INSERT INTO typedefs (operation, body) VALUES (?, ?)", (operation, json.dumps(body)))
            self.types = candidate
            self._ends.clear()
        return dict(body)

    # ----- reads ------------------------------------------------------------------------

    def _row_by_guid(self, guid: str) -> sqlite3.Row | None:
        return self._db.execute("SELECT * FROM entities WHERE guid = ?", (guid,)).fetchone()

    def _guid_row(self, guid: str) -> sqlite3.Row:
        row = self._row_by_guid(guid)
        if row is None:
            raise EntityNotFound("INSTANCE_GUID_NOT_FOUND", guid)
        return row

    def _current_row(self, type_name: str, qualified_name: str) -> sqlite3.Row | None:
        """The entity of exactly this type and name that is not deleted (the one a create updates)."""
        return self._db.execute("SELECT * FROM entities WHERE type_name = ? AND qualified_name = ? AND status != ?",
                                (type_name, qualified_name, DELETED)).fetchone()

    def _lookup(self, type_name: str, qualified_name: str) -> sqlite3.Row | None:
        """Atlas's lookup by unique attribute: the type or a subtype; an entity not deleted first, else the latest."""
        types = self.subtypes(type_name)
        marks = ",".join("?" * len(types))
        return self._db.execute(f"SELECT * FROM entities WHERE qualified_name = ? AND type_name IN ({marks}) "
                                "ORDER BY status = 'DELETED', update_time DESC LIMIT 1",
                                (qualified_name, *types)).fetchone()

    def _unique_row(self, type_name: str, qualified_name: str) -> sqlite3.Row:
        if type_name not in self.types.entity_defs:
            raise BadRequest("TYPE_NAME_INVALID", "ENTITY", type_name)
        row = self._lookup(type_name, qualified_name)
        if row is None:
            raise EntityNotFound("INSTANCE_BY_UNIQUE_ATTRIBUTE_NOT_FOUND", type_name,
                                 f"{{qualifiedName={qualified_name}}}")
        return row

    def subtypes(self, type_name: str) -> list[str]:
        """The entity type and every entity type that derives from it."""
        return [name for name in self.types.entity_defs if self.types.is_subtype(name, type_name)]

    def guid_of(self, type_name: str, qualified_name: str) -> str:
        with self._lock:
            return self._unique_row(type_name, qualified_name)["guid"]

    def entity(self, guid: str) -> dict:
        """``GET /v2/entity/guid/{guid}``: an AtlasEntityWithExtInfo."""
        with self._lock:
            return {"entity": self._entity_json(self._guid_row(guid)), "referredEntities": {}}

    def entities(self, guids: Iterable[str]) -> dict:
        """``GET /v2/entity/bulk?guid=``: an AtlasEntitiesWithExtInfo of the guids that exist."""
        with self._lock:
            rows = [row for guid in guids if (row := self._row_by_guid(guid)) is not None]
            return {"entities": [self._entity_json(row) for row in rows], "referredEntities": {}}

    def entity_by_unique(self, type_name: str, qualified_name: str) -> dict:
        """``GET /v2/entity/uniqueAttribute/type/{type}?attr:qualifiedName=``: the entity (without ext info)."""
        with self._lock:
            return self._entity_json(self._unique_row(type_name, qualified_name))

    def entities_by_unique(self, type_name: str, qualified_names: Iterable[str]) -> dict:
        """``GET /v2/entity/bulk/uniqueAttribute/type/{type}?attr_0:qualifiedName=``: those that exist."""
        with self._lock:
            if type_name not in self.types.entity_defs:
                raise BadRequest("TYPE_NAME_INVALID", "ENTITY", type_name)
            rows = [row for name in qualified_names if (row := self._lookup(type_name, name)) is not None]
            return {"entities": [self._entity_json(row) for row in rows], "referredEntities": {}}

    def _entity_json(self, row: sqlite3.Row) -> dict:
        guid, type_name = row["guid"], row["type_name"]
        attributes = json.loads(row["attributes"])
        defs = self.types.attribute_defs(type_name)
        ends = self._relationship_ends(type_name)
        related: dict[str, list[dict]] = {name: [] for name in ends}
        for rel in self._current_relationships(guid):
            definition = self.types.relationship_defs.get(rel["type_name"])
            if definition is None:
                continue
            own, other = ("endDef1", rel["end2"]) if rel["end1"] == guid else ("endDef2", rel["end1"])
            related.setdefault(definition[own]["name"], []).append(self._related_object_id(other, rel))
        relationship_attributes = {}
        for name, values in related.items():
            many = name not in ends or ends[name][0].cardinality in ("SET", "LIST")
            relationship_attributes[name] = values if many else (values[-1] if values else None)
            if name in defs:  # a legacy attribute (Process.inputs): Atlas shows it as an attribute too
                ids = [_object_id_of(v) for v in values]
                attributes[name] = ids if many else (ids[-1] if ids else None)
        meanings = [self._term_assignment(rel) for rel in self._current_relationships(guid)
                    if rel["type_name"] == TERM_ASSIGNMENT and rel["end2"] == guid]
        return {"typeName": type_name, "guid": guid, "status": row["status"], "attributes": attributes,
                "relationshipAttributes": relationship_attributes, "createdBy": row["created_by"],
                "updatedBy": row["updated_by"], "createTime": row["create_time"], "updateTime": row["update_time"],
                "version": row["version"], "isIncomplete": bool(row["placeholder"]),
                "classifications": [self._classification_json(guid, name) for (name,) in self._db.execute(
                    "SELECT type_name FROM classifications WHERE entity_guid = ? ORDER BY type_name", (guid,))],
                "meanings": meanings, "labels": json.loads(row["labels"]), "proxy": False}

    def _object_id(self, guid: str) -> dict:
        row = self._row_by_guid(guid)
        return {"guid": guid, "typeName": row["type_name"],
                "uniqueAttributes": {"qualifiedName": row["qualified_name"]}}

    def _related_object_id(self, guid: str, relationship: sqlite3.Row) -> dict:
        row = self._row_by_guid(guid)
        return {**self._object_id(guid), "entityStatus": row["status"], "displayText": self._display_text(row),
                "relationshipType": relationship["type_name"], "relationshipGuid": relationship["guid"],
                "relationshipStatus": relationship["status"],
                "relationshipAttributes": {"typeName": relationship["type_name"], "attributes": {}}}

    def _term_assignment(self, relationship: sqlite3.Row) -> dict:
        term = self._row_by_guid(relationship["end1"])
        return {"termGuid": term["guid"], "relationGuid": relationship["guid"], "displayText": self._display_text(term),
                "qualifiedName": term["qualified_name"], "status": relationship["status"]}

    def _display_text(self, row: sqlite3.Row) -> str:
        attributes = json.loads(row["attributes"])
        option = (self.types.entity_defs.get(row["type_name"], {}).get("options") or {}).get("displayTextAttribute")
        return str(attributes.get(option) or attributes.get("name") or attributes["qualifiedName"])

    def header(self, guid: str, extra_attributes: Iterable[str] = ()) -> dict:
        """An AtlasEntityHeader; ``extra_attributes`` are the attributes a search asked for."""
        with self._lock:
            row = self._guid_row(guid)
            attributes = json.loads(row["attributes"])
            shown = {k: attributes[k] for k in (*HEADER_ATTRIBUTES, *extra_attributes) if k in attributes}
            classifications = [self._classification_json(guid, name) for (name,) in self._db.execute(
                "SELECT type_name FROM classifications WHERE entity_guid = ? ORDER BY type_name", (guid,))]
            meanings = [self._term_assignment(rel) for rel in self._current_relationships(guid)
                        if rel["type_name"] == TERM_ASSIGNMENT and rel["end2"] == guid]
            return {"guid": guid, "typeName": row["type_name"], "status": row["status"], "attributes": shown,
                    "displayText": self._display_text(row),
                    "classificationNames": [c["typeName"] for c in classifications],
                    "classifications": classifications, "meaningNames": [m["displayText"] for m in meanings],
                    "meanings": meanings, "labels": json.loads(row["labels"]), "isIncomplete": bool(row["placeholder"])}

    def history(self, guid: str) -> list[dict]:
        """Every audit event of the entity, oldest first: Atlas's EntityAuditEventV2 with the entity after it."""
        with self._lock:
            rows = self._db.execute("SELECT * FROM audit WHERE guid = ? ORDER BY id", (guid,)).fetchall()
        return [{"entityId": r["guid"], "timestamp": r["time"], "user": r["user"], "action": r["action"],
                 "details": r["details"], "eventKey": f"{r['guid']}:{r['time']}:{r['id']}",
                 "entity": json.loads(r["entity"]),
                 "type": "ENTITY_AUDIT_V2"} for r in rows]

    def _audit(self, guid: str, action: str, user: str | None, *, detail: Any = None) -> None:
        entity = self._entity_json(self._row_by_guid(guid))
        shown = entity if detail is None else detail
        details = _AUDIT_PREFIX[action] + (shown if isinstance(shown, str) else json.dumps(shown))
        self._db.execute("INSERT INTO audit (guid, version, time, user, action, details, entity) "
                         "VALUES (?, ?, ?, ?, ?, ?, ?)",
                         (guid, entity["version"], _now(), user, action, details, json.dumps(entity)))

    # ----- lineage ------------------------------------------------------------------------

    def lineage(self, guid: str, direction: str = "BOTH", depth: int = 3) -> dict:
        """``GET /v2/lineage/{guid}``: AtlasLineageInfo. One level of depth is one process."""
        direction = direction.upper()
        if direction not in ("INPUT", "OUTPUT", "BOTH"):
            raise BadRequest("BAD_REQUEST", f"direction must be INPUT, OUTPUT or BOTH, not {direction!r}")
        with self._lock:
            self._guid_row(guid)
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
            from_process = is_process == (level % 2 == 0)
            relationship = INPUTS if (way == "INPUT") == from_process else OUTPUTS
            query = ("SELECT end2 AS other, guid FROM relationships WHERE end1 = ? AND type_name = ? AND "
                     "superseded = 0" if from_process else
                     "SELECT end1 AS other, guid FROM relationships WHERE end2 = ? AND type_name = ? AND "
                     "superseded = 0")
            following = set()
            for node in frontier:
                for other, rel in self._db.execute(query, (node, relationship)).fetchall():
                    process, dataset = (node, other) if from_process else (other, node)
                    relations[(dataset, process) if relationship == INPUTS else (process, dataset)] = rel
                    if other not in nodes:
                        nodes.add(other)
                        following.add(other)
            frontier = following
            if not frontier:
                return

    # ----- what search and metrics read -------------------------------------------------

    def documents(self) -> list[dict]:
        """Every entity as search sees it: attributes plus Atlas's system attributes (``__guid``, ``__state``...)."""
        with self._lock:
            classified: dict[str, list[str]] = {}
            for guid, name in self._db.execute("SELECT entity_guid, type_name FROM classifications ORDER BY type_name"):
                classified.setdefault(guid, []).append(name)
            terms: dict[str, list[str]] = {}
            for guid, name in self._db.execute(
                    "SELECT r.end2, e.qualified_name FROM relationships r JOIN entities e ON e.guid = r.end1 "
                    "WHERE r.type_name = ? AND r.superseded = 0", (TERM_ASSIGNMENT,)):
                terms.setdefault(guid, []).append(name)
            documents = []
            for row in self._db.execute("SELECT * FROM entities ORDER BY qualified_name, guid"):
                attributes = json.loads(row["attributes"])
                documents.append({**attributes, "__guid": row["guid"], "__typeName": row["type_name"],
                                  "__state": row["status"], "__timestamp": row["create_time"],
                                  "__modificationTimestamp": row["update_time"], "__createdBy": row["created_by"],
                                  "__modifiedBy": row["updated_by"], "__isIncomplete": bool(row["placeholder"]),
                                  "__classificationNames": classified.get(row["guid"], []),
                                  "__labels": json.loads(row["labels"]), "__meanings": terms.get(row["guid"], [])})
            return documents

    def counts(self) -> dict[str, dict[str, int]]:
        """Entities per status (ACTIVE, DELETED, shell) and type, and entities per classification."""
        with self._lock:
            result: dict[str, dict[str, int]] = {"ACTIVE": {}, "DELETED": {}, "SHELL": {}, "TAGGED": {}}
            for type_name, status, placeholder, n in self._db.execute(
                    "SELECT type_name, status, placeholder, count(*) FROM entities GROUP BY 1, 2, 3"):
                kind = "SHELL" if placeholder else status
                result[kind][type_name] = result[kind].get(type_name, 0) + n
            for name, n in self._db.execute("SELECT type_name, count(*) FROM classifications GROUP BY 1"):
                result["TAGGED"][name] = n
            return result

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


class _Resolver:
    """Turns references of one write into guids: the message's negative guids, existing entities,
    or (over Kafka) placeholders for entities nobody created yet."""

    def __init__(self, graph: LineageGraph, assigned: dict[str, str], names: dict[str, tuple[str, str]],
                 user: str | None, placeholders: bool) -> None:
        self.graph, self.assigned, self.names, self.user, self.placeholders = graph, assigned, names, user, placeholders

    def guid(self, reference: Mapping[str, Any]) -> str:
        if not isinstance(reference, Mapping):
            raise BadRequest("INSTANCE_CRUD_INVALID_PARAMS", f"not a reference: {reference!r:.200}")
        guid = reference.get("guid")
        if guid in self.assigned:
            return self.assigned[guid]
        if guid and not guid.startswith("-") and self.graph._row_by_guid(guid) is not None:
            return guid
        type_name = reference.get("typeName")
        qualified_name = (reference.get("uniqueAttributes") or {}).get("qualifiedName")
        if type_name and qualified_name:
            for known, name in self.names.items():
                if name == (type_name, qualified_name):
                    return known
            row = self.graph._lookup(type_name, qualified_name)
            if row is not None:
                return row["guid"]
            if self.placeholders:
                if type_name not in self.graph.types.entity_defs:
                    raise BadRequest("TYPE_NAME_INVALID", "ENTITY", type_name)
                return self.graph._insert_placeholder(type_name, qualified_name, self.user)
        raise EntityNotFound("REFERENCED_ENTITY_NOT_FOUND", f"{type_name or ''} {qualified_name or guid}".strip())

    def type_of(self, guid: str) -> str:
        known = self.names.get(guid)
        return known[0] if known else self.graph._guid_row(guid)["type_name"]

    def __call__(self, value: Any) -> Any:
        """An attribute value with the references in it pointing at real guids."""
        if isinstance(value, list):
            return [self(v) for v in value]
        if not _is_reference(value):
            return value
        guid = self.guid(value)
        name = self.names[guid][1] if guid in self.names else self.graph._guid_row(guid)["qualified_name"]
        return {"guid": guid, "typeName": self.type_of(guid), "uniqueAttributes": {"qualifiedName": name}}


def _is_reference(value: Any) -> bool:
    if isinstance(value, list):
        return bool(value) and all(_is_reference(v) for v in value)
    return isinstance(value, Mapping) and "attributes" not in value and (
        "guid" in value or ("typeName" in value and "uniqueAttributes" in value))


def _object_id_of(related: Mapping[str, Any]) -> dict:
    return {k: related[k] for k in ("guid", "typeName", "uniqueAttributes")}


def _now() -> int:
    return time.time_ns() // 1_000_000


def qualified_names(headers: Iterable[Mapping[str, Any]]) -> list[str]:
    return sorted(h["attributes"]["qualifiedName"] for h in headers)
