"""Atlas's type system, loaded from typedef JSON files, to check entities before they are sent.

Atlas rejects or silently mangles entities that do not fit its types (a hook message
is consumed asynchronously, so the producer never sees the error). This module loads
the same typedef files Atlas bootstraps from (``mlstream/schemas/atlas/``: Atlas's model files,
their patches, and our ``mlstream_typedefs.json``), applies the patches the way
Atlas's ``AtlasTypeDefStoreInitializer`` does, and checks entities against the result.

>>> types = TypeSystem.load()
>>> types.supertypes("kafka_topic")
['DataSet', 'Asset', 'Referenceable']
>>> "partitionCount" in types.attribute_defs("kafka_topic")   # added by a patch
True
>>> types.validate_entity({"typeName": "kafka_topic", "attributes": {
...     "qualifiedName": "records@primary", "name": "records", "topic": "records"}})
["kafka_topic[records@primary]: missing required attribute 'uri'"]
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlstream.settings import SCHEMA_DIR

#: Where the typedef files live in the repository (a copy of Atlas's files plus ours).
DEFAULT_TYPEDEFS_DIR = SCHEMA_DIR / "atlas"

#: The typedef file with mlstream's own types; Atlas must be given it (POST /v2/types/typedefs)
#: before it can accept our entities.
MLSTREAM_TYPEDEFS_FILE = DEFAULT_TYPEDEFS_DIR / "mlstream_typedefs.json"

_DEF_KINDS = ("enumDefs", "structDefs", "classificationDefs", "entityDefs", "relationshipDefs",
              "businessMetadataDefs")

#: Fields of an AtlasEntity in JSON (org.apache.atlas.model.instance.AtlasEntity and AtlasStruct).
ENTITY_FIELDS = frozenset({
    "typeName", "attributes", "guid", "homeId", "isProxy", "isIncomplete", "provenanceType",
    "status", "createdBy", "updatedBy", "createTime", "updateTime", "version",
    "relationshipAttributes", "classifications", "meanings", "customAttributes",
    "businessAttributes", "labels", "pendingTasks",
})

#: Fields of an AtlasObjectId / AtlasRelatedObjectId in JSON.
_OBJECT_ID_FIELDS = frozenset({
    "guid", "typeName", "uniqueAttributes", "relationshipType", "relationshipGuid",
    "relationshipStatus", "relationshipAttributes", "displayText", "qualifiedName", "entityStatus",
})

_INT_RANGES = {
    "byte": (-(2**7), 2**7 - 1),
    "short": (-(2**15), 2**15 - 1),
    "int": (-(2**31), 2**31 - 1),
    "long": (-(2**63), 2**63 - 1),
    "biginteger": (None, None),
}
_FLOAT_TYPES = frozenset({"float", "double", "bigdecimal"})
_BUILTIN_TYPES = frozenset({*_INT_RANGES, *_FLOAT_TYPES, "boolean", "string", "date", "objectid"})
_ARRAY_RE = re.compile(r"^array<(.+)>$")
_MAP_RE = re.compile(r"^map<(.+)>$")


class TypeDefError(ValueError):
    """The typedef files are inconsistent (a duplicate type, an unsupported patch action)."""


@dataclass(frozen=True)
class RelationshipEnd:
    """One end of a relationshipDef, as seen from an entity type that has it."""

    relationship: str   # relationshipDef name, the value of a reference's "relationshipType"
    name: str           # the relationship attribute name on this end's entity type
    cardinality: str    # SINGLE | SET | LIST
    other_type: str     # entity type the referenced entities must be (or derive from)
    end: int = 1        # 1 if this is the relationshipDef's endDef1 (the relationship's end1), else 2


@dataclass
class TypeSystem:
    """Typedefs by name after all patches, plus a record of which patches were applied."""

    enum_defs: dict[str, dict] = field(default_factory=dict)
    struct_defs: dict[str, dict] = field(default_factory=dict)
    classification_defs: dict[str, dict] = field(default_factory=dict)
    entity_defs: dict[str, dict] = field(default_factory=dict)
    relationship_defs: dict[str, dict] = field(default_factory=dict)
    business_metadata_defs: dict[str, dict] = field(default_factory=dict)
    applied_patches: list[str] = field(default_factory=list)
    #: (patch id, reason) for patches Atlas would skip too: a type not loaded, or a version
    #: the type has already moved past.
    skipped_patches: list[tuple[str, str]] = field(default_factory=list)

    # ----- loading ----------------------------------------------------------------------

    @classmethod
    def load(cls, directory: Path = DEFAULT_TYPEDEFS_DIR) -> "TypeSystem":
        """Load model files and patches in Atlas's order.

        Atlas loads each area folder (``0000-Area0``, ``1000-Hadoop``, ...) in name order:
        its model files in name order, then the area's ``patches/`` in name order. Here the
        model files of all areas sit in one folder, so a model file's area is its number
        rounded down to the thousand (``1070-kafka_model.json`` -> ``1000-*``), and the
        area's patches are in ``patches/1000-*/``. Files without a number (our own) load last.
        """
        types = cls()
        model_files = sorted(directory.glob("*.json"))
        areas: dict[int, list[Path]] = {}
        unnumbered: list[Path] = []
        for path in model_files:
            number = re.match(r"^(\d+)-", path.name)
            if number:
                areas.setdefault(int(number.group(1)) // 1000 * 1000, []).append(path)
            else:
                unnumbered.append(path)
        patch_dirs = {int(d.name.split("-", 1)[0]): d
                      for d in (directory / "patches").glob("[0-9]*-*") if d.is_dir()}
        for area in sorted(set(areas) | set(patch_dirs)):
            for path in areas.get(area, []):
                types.add_typedefs(json.loads(path.read_text(encoding="utf-8")), source=path.name)
            if area in patch_dirs:
                for patch_file in sorted(patch_dirs[area].glob("*.json")):
                    for patch in json.loads(patch_file.read_text(encoding="utf-8"))["patches"]:
                        types.apply_patch(patch)
        for path in unnumbered:
            types.add_typedefs(json.loads(path.read_text(encoding="utf-8")), source=path.name)
        types.check_references()
        return types

    def add_typedefs(self, typedefs: Mapping[str, Any], *, source: str = "<typedefs>") -> None:
        """Add the defs of one typedef document (the body of ``POST /v2/types/typedefs``)."""
        for kind in _DEF_KINDS:
            registry = self._registry(kind)
            for typedef in typedefs.get(kind) or []:
                name = typedef["name"]
                if self.find(name) is not None:
                    raise TypeDefError(f"{source}: type {name!r} is already defined")
                registry[name] = copy.deepcopy(dict(typedef))  # own copy: patches mutate it

    def update_typedefs(self, typedefs: Mapping[str, Any], *, source: str = "<typedefs>") -> None:
        """Replace defs by name (the body of ``PUT /v2/types/typedefs``); a name not defined is an error."""
        for kind in _DEF_KINDS:
            registry = self._registry(kind)
            for typedef in typedefs.get(kind) or []:
                if typedef["name"] not in registry:
                    raise TypeDefError(f"{source}: type {typedef['name']!r} is not defined")
                registry[typedef["name"]] = copy.deepcopy(dict(typedef))

    def check_references(self) -> None:
        """Raise TypeDefError if a supertype, attribute type or relationship end is undefined."""
        missing: list[str] = []
        for kind in ("structDefs", "classificationDefs", "entityDefs"):
            for name, typedef in self._registry(kind).items():
                missing += [f"{name}: supertype {s!r}" for s in typedef.get("superTypes") or []
                            if self.find(s) is None]
                missing += [f"{name}.{a['name']}: type {t!r}" for a in typedef.get("attributeDefs") or []
                            for t in _element_types(a["typeName"])
                            if t not in _BUILTIN_TYPES and self.find(t) is None]
        for name, typedef in self.relationship_defs.items():
            missing += [f"{name}: end type {end['type']!r}" for end in (typedef["endDef1"], typedef["endDef2"])
                        if end["type"] not in self.entity_defs]
        if missing:
            raise TypeDefError("undefined types: " + "; ".join(missing))

    def _registry(self, kind: str) -> dict[str, dict]:
        return {
            "enumDefs": self.enum_defs, "structDefs": self.struct_defs,
            "classificationDefs": self.classification_defs, "entityDefs": self.entity_defs,
            "relationshipDefs": self.relationship_defs,
            "businessMetadataDefs": self.business_metadata_defs,
        }[kind]

    def find(self, name: str) -> dict | None:
        """The def of any kind named ``name``; None if there is none."""
        for kind in _DEF_KINDS:
            if name in self._registry(kind):
                return self._registry(kind)[name]
        return None

    # ----- patches (AtlasTypeDefStoreInitializer.*PatchHandler) ------------------------

    def apply_patch(self, patch: Mapping[str, Any]) -> bool:
        """Apply one typedef patch if Atlas would; returns whether it was applied."""
        action = patch["action"]
        handler = _PATCH_ACTIONS.get(action)
        if handler is None:
            raise TypeDefError(f"patch {patch.get('id')}: unsupported action {action!r}")
        typedef = self.find(patch["typeName"])
        if typedef is None:
            self.skipped_patches.append((patch["id"], f"type {patch['typeName']!r} not loaded"))
            return False
        current, apply_to = typedef.get("typeVersion"), patch["applyToVersion"]
        # Same test as PatchHandler.isPatchApplicable: a type is patched only from the
        # version the patch was written for, so the patches of one type form a chain.
        if current is not None and current.lower() != apply_to.lower() \
                and not current.startswith(apply_to + "."):
            self.skipped_patches.append(
                (patch["id"], f"{patch['typeName']} is at version {current}, patch applies to {apply_to}"))
            return False
        handler(self, typedef, patch)
        typedef["typeVersion"] = patch["updateToVersion"]
        self.applied_patches.append(patch["id"])
        return True

    def _patch_add_attribute(self, typedef: dict, patch: Mapping[str, Any]) -> None:
        for attribute in patch["attributeDefs"]:
            _add_attribute(typedef, attribute)

    def _patch_update_attribute(self, typedef: dict, patch: Mapping[str, Any]) -> None:
        self._patch_add_attribute(typedef, patch)  # Atlas: remove the old def, add the new one

    def _patch_update_attribute_metadata(self, typedef: dict, patch: Mapping[str, Any]) -> None:
        for attribute in typedef.get("attributeDefs", []):
            if attribute["name"].lower() == patch["attributeName"].lower():
                attribute.update(patch["params"])

    def _patch_update_enumdef(self, typedef: dict, patch: Mapping[str, Any]) -> None:
        elements = typedef.setdefault("elementDefs", [])
        for element in patch["elementDefs"]:
            elements[:] = [e for e in elements if e["value"].lower() != element["value"].lower()]
            elements.append(dict(element))

    def _patch_update_typedef_options(self, typedef: dict, patch: Mapping[str, Any]) -> None:
        typedef.setdefault("options", {}).update(patch["typeDefOptions"])

    def _patch_set_service_type(self, typedef: dict, patch: Mapping[str, Any]) -> None:
        typedef["serviceType"] = patch["serviceType"]

    def _patch_add_super_types(self, typedef: dict, patch: Mapping[str, Any]) -> None:
        supertypes = typedef.setdefault("superTypes", [])
        supertypes.extend(s for s in patch["superTypes"] if s not in supertypes)

    def _patch_remove_legacy_ref_attributes(self, typedef: dict, patch: Mapping[str, Any]) -> None:
        # The relationship stays; the plain attributes that used to mirror its ends go, so
        # the ends can only be set through relationshipAttributes from now on.
        params = patch.get("params") or {}
        if str(params.get("swapEnds", "false")).lower() == "true":
            typedef["endDef1"], typedef["endDef2"] = typedef["endDef2"], typedef["endDef1"]
        end1, end2 = typedef["endDef1"], typedef["endDef2"]
        label = params.get("relationshipLabel")
        if not label:
            legacy = end1 if end1.get("isLegacyAttribute") else end2
            label = f"__{legacy['type']}.{legacy['name']}"
        typedef["relationshipLabel"] = label
        if params.get("relationshipCategory"):
            typedef["relationshipCategory"] = params["relationshipCategory"]
        for end in (end1, end2):
            entity_def = self.entity_defs.get(end["type"])
            if entity_def is not None:
                entity_def["attributeDefs"] = [a for a in entity_def.get("attributeDefs", [])
                                               if a["name"] != end["name"]]

    # ----- queries ----------------------------------------------------------------------

    def supertypes(self, type_name: str) -> list[str]:
        """All supertypes of an entity, struct or classification type, nearest first."""
        result: list[str] = []
        queue = list(self.find(type_name).get("superTypes") or [])
        while queue:
            name = queue.pop(0)
            if name not in result:
                result.append(name)
                queue.extend(self.find(name).get("superTypes") or [])
        return result

    def is_subtype(self, type_name: str, of: str) -> bool:
        """True if ``type_name`` is ``of`` or derives from it."""
        return type_name == of or of in self.supertypes(type_name)

    def attribute_defs(self, type_name: str) -> dict[str, dict]:
        """Attribute defs by name, inherited ones included."""
        result: dict[str, dict] = {}
        for name in [*reversed(self.supertypes(type_name)), type_name]:
            for attribute in self.find(name).get("attributeDefs") or []:
                result[attribute["name"]] = attribute
        return result

    def relationship_ends(self, type_name: str) -> dict[str, list[RelationshipEnd]]:
        """Relationship attribute names an entity type has (its own and its supertypes')."""
        lineage = {type_name, *self.supertypes(type_name)}
        result: dict[str, list[RelationshipEnd]] = {}
        for rel_name, rel in self.relationship_defs.items():
            for number, end, other in ((1, rel["endDef1"], rel["endDef2"]), (2, rel["endDef2"], rel["endDef1"])):
                if end["type"] in lineage:
                    result.setdefault(end["name"], []).append(RelationshipEnd(
                        rel_name, end["name"], end.get("cardinality", "SINGLE"), other["type"], number))
        return result

    def unique_attributes(self, type_name: str) -> set[str]:
        return {name for name, a in self.attribute_defs(type_name).items() if a.get("isUnique")}

    # ----- validation -------------------------------------------------------------------

    def validate_entity(self, entity: Any, *, partial: bool = False) -> list[str]:
        """Problems that would make Atlas reject or misread this AtlasEntity; [] if none.

        ``partial=True`` checks an entity of an ENTITY_PARTIAL_UPDATE_V2, which carries only
        the attributes to change, so missing required attributes are not problems.
        """
        if not isinstance(entity, Mapping):
            return [f"entity must be an object, not {type(entity).__name__}"]
        type_name = entity.get("typeName")
        attributes = entity.get("attributes")
        label = _entity_label(entity)
        if not isinstance(type_name, str):
            return [f"{label}: typeName missing"]
        if type_name not in self.entity_defs:
            kind = "not an entity type" if self.find(type_name) else "unknown type"
            return [f"{label}: {kind} {type_name!r}"]
        problems = [f"{label}: unknown entity field {key!r}"
                    for key in entity if key not in ENTITY_FIELDS]
        guid = entity.get("guid")
        if guid is not None and (not isinstance(guid, str) or not guid):
            problems.append(f"{label}: guid must be a non-empty string")
        if not isinstance(attributes, Mapping):
            return [*problems, f"{label}: attributes must be an object"]
        relationship_attributes = entity.get("relationshipAttributes") or {}
        if not isinstance(relationship_attributes, Mapping):
            return [*problems, f"{label}: relationshipAttributes must be an object"]

        defs = self.attribute_defs(type_name)
        ends = self.relationship_ends(type_name)
        for name, value in attributes.items():
            if name not in defs:
                hint = " (it is a relationship end: put it in relationshipAttributes)" if name in ends else ""
                problems.append(f"{label}: attribute {name!r} is not defined by {type_name} "
                                f"or its supertypes{hint}")
            elif value is not None:
                problems += self._check_value(defs[name]["typeName"], value, f"{label}.{name}")
        if not partial:
            problems += [f"{label}: missing required attribute {name!r}"
                         for name, attribute in defs.items()
                         if not attribute.get("isOptional", True) and attributes.get(name) is None
                         and relationship_attributes.get(name) is None]
        for name, value in relationship_attributes.items():
            if name not in ends:
                problems.append(f"{label}: relationshipAttribute {name!r} is not a relationship end "
                                f"of {type_name} or its supertypes")
            elif value is not None:
                problems += self._check_relationship_value(ends[name], value, f"{label}.{name}")
        for classification in entity.get("classifications") or []:
            if not isinstance(classification, Mapping) \
                    or classification.get("typeName") not in self.classification_defs:
                problems.append(f"{label}: classification {classification!r} is not a known "
                                "classification type")
        return problems

    def validate_entities(self, entities: Iterable[Any], *, partial: bool = False) -> list[str]:
        """Check the entities of one message together.

        Besides each entity alone: guids must be unique, and every reference by a negative
        (not yet assigned) guid must point at an entity of the same message, because Atlas
        resolves those only within the message.
        """
        entities = list(entities)
        problems: list[str] = []
        by_guid: dict[str, Mapping] = {}
        for entity in entities:
            problems += self.validate_entity(entity, partial=partial)
            guid = entity.get("guid") if isinstance(entity, Mapping) else None
            if isinstance(guid, str):
                if guid in by_guid:
                    problems.append(f"{_entity_label(entity)}: guid {guid} is used by two entities")
                by_guid[guid] = entity
        for entity in entities:
            if not isinstance(entity, Mapping):
                continue
            for where, reference in _references(entity):
                guid = reference.get("guid")
                if not isinstance(guid, str) or not guid.startswith("-"):
                    continue
                target = by_guid.get(guid)
                if target is None:
                    problems.append(f"{_entity_label(entity)}.{where}: guid {guid} is not an entity "
                                    "of this message")
                elif reference.get("typeName") not in (None, target.get("typeName")):
                    problems.append(f"{_entity_label(entity)}.{where}: guid {guid} is a "
                                    f"{target.get('typeName')}, the reference says {reference['typeName']}")
        return problems

    def validate_notification(self, notification: Mapping[str, Any]) -> list[str]:
        """Check the entities of a V2 hook notification (the ``message`` of an envelope)."""
        kind = notification.get("type")
        if kind in ("ENTITY_CREATE_V2", "ENTITY_FULL_UPDATE_V2"):
            body = notification.get("entities") or {}
            return self.validate_entities(
                [*(body.get("entities") or []), *(body.get("referredEntities") or {}).values()])
        if kind == "ENTITY_PARTIAL_UPDATE_V2":
            body = notification.get("entity") or {}
            problems = self._check_object_id(notification.get("entityId"), "Referenceable", "entityId",
                                             require_unique_attributes=True)
            return problems + self.validate_entities(
                [body.get("entity"), *(body.get("referredEntities") or {}).values()], partial=True)
        if kind == "ENTITY_DELETE_V2":
            # Atlas deletes by typeName + uniqueAttributes only; a guid alone is ignored.
            return [problem for index, object_id in enumerate(notification.get("entities") or [])
                    for problem in self._check_object_id(object_id, "Referenceable", f"entities[{index}]",
                                                         require_unique_attributes=True)]
        if kind is None and "message" in notification:
            return ["this is an envelope: pass its 'message' (the notification)"]
        return [f"unsupported notification type {kind!r}"]

    def _check_relationship_value(self, ends: list[RelationshipEnd], value: Any, where: str) -> list[str]:
        many = ends[0].cardinality in ("SET", "LIST")
        if many != isinstance(value, list):
            return [f"{where}: expected {'a list of references' if many else 'one reference'} "
                    f"({ends[0].cardinality})"]
        problems: list[str] = []
        for index, reference in enumerate(value if many else [value]):
            at = f"{where}[{index}]" if many else where
            rel_type = reference.get("relationshipType") if isinstance(reference, Mapping) else None
            matching = [end for end in ends if rel_type in (None, end.relationship)]
            if not matching:
                problems.append(f"{at}: relationshipType {rel_type!r} does not have an end "
                                f"{ends[0].name!r} here; expected one of "
                                f"{sorted(end.relationship for end in ends)}")
                continue
            problems += self._check_object_id(reference, matching[0].other_type, at)
        return problems

    def _check_value(self, type_name: str, value: Any, where: str) -> list[str]:
        array = _ARRAY_RE.match(type_name)
        if array:
            if not isinstance(value, list):
                return [f"{where}: expected a list ({type_name})"]
            return [p for i, item in enumerate(value) for p in self._check_value(array.group(1), item, f"{where}[{i}]")]
        mapping = _MAP_RE.match(type_name)
        if mapping:
            key_type, value_type = _split_map_types(mapping.group(1))
            if not isinstance(value, Mapping):
                return [f"{where}: expected an object ({type_name})"]
            return [p for k, v in value.items()
                    for p in [*self._check_value(key_type, k, f"{where} key"),
                              *self._check_value(value_type, v, f"{where}[{k!r}]")]]
        if type_name == "string":
            return [] if isinstance(value, str) else [f"{where}: expected a string"]
        if type_name == "boolean":
            return [] if isinstance(value, bool) else [f"{where}: expected true or false"]
        if type_name in _INT_RANGES or type_name == "date":
            low, high = _INT_RANGES.get(type_name, _INT_RANGES["long"])
            what = "epoch milliseconds (an integer)" if type_name == "date" else f"an integer ({type_name})"
            if not isinstance(value, int) or isinstance(value, bool):
                return [f"{where}: expected {what}"]
            if low is not None and not low <= value <= high:
                return [f"{where}: {value} is out of range for {type_name}"]
            return []
        if type_name in _FLOAT_TYPES:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            return [] if ok else [f"{where}: expected a number ({type_name})"]
        if type_name == "objectid":
            return self._check_object_id(value, "Referenceable", where)
        if type_name in self.enum_defs:
            values = [e["value"] for e in self.enum_defs[type_name].get("elementDefs", [])]
            return [] if value in values else [f"{where}: {value!r} is not one of {values}"]
        if type_name in self.struct_defs:
            return self._check_struct(type_name, value, where)
        if type_name in self.entity_defs:
            return self._check_object_id(value, type_name, where)
        return [f"{where}: attribute type {type_name!r} is not defined"]

    def _check_struct(self, type_name: str, value: Any, where: str) -> list[str]:
        if not isinstance(value, Mapping):
            return [f"{where}: expected a {type_name} struct"]
        attributes = value.get("attributes", value) if "typeName" in value else value
        if "typeName" in value and value["typeName"] != type_name:
            return [f"{where}: expected a {type_name} struct, got {value['typeName']!r}"]
        defs = self.attribute_defs(type_name)
        problems = [f"{where}: attribute {name!r} is not defined by {type_name}"
                    for name in attributes if name not in defs]
        for name, attribute in defs.items():
            if attributes.get(name) is not None:
                problems += self._check_value(attribute["typeName"], attributes[name], f"{where}.{name}")
            elif not attribute.get("isOptional", True):
                problems.append(f"{where}: missing required attribute {name!r}")
        return problems

    def _check_object_id(self, reference: Any, expected_type: str, where: str, *,
                         require_unique_attributes: bool = False) -> list[str]:
        """An AtlasObjectId: a guid, or typeName + uniqueAttributes; never a whole entity."""
        if not isinstance(reference, Mapping):
            return [f"{where}: a reference must be an object with a guid or typeName + uniqueAttributes"]
        if "attributes" in reference:
            return [f"{where}: a whole entity is embedded; put it in entities/referredEntities and "
                    "reference it by guid or typeName + uniqueAttributes"]
        problems = [f"{where}: unknown reference field {key!r}" for key in reference if key not in _OBJECT_ID_FIELDS]
        guid, type_name = reference.get("guid"), reference.get("typeName")
        unique = reference.get("uniqueAttributes")
        if guid is not None and (not isinstance(guid, str) or not guid):
            problems.append(f"{where}: guid must be a non-empty string")
        by_name = isinstance(type_name, str) and isinstance(unique, Mapping) and bool(unique)
        if require_unique_attributes and not by_name:
            problems.append(f"{where}: needs typeName and uniqueAttributes")
        elif not guid and not by_name:
            problems.append(f"{where}: a reference needs a guid or typeName + uniqueAttributes")
        if type_name is not None:
            if type_name not in self.entity_defs:
                return [*problems, f"{where}: unknown entity type {type_name!r}"]
            if not self.is_subtype(type_name, expected_type):
                problems.append(f"{where}: references a {type_name}, expected a {expected_type}")
            if isinstance(unique, Mapping):
                allowed = self.unique_attributes(type_name)
                problems += [f"{where}: {name!r} is not a unique attribute of {type_name}"
                             for name in unique if name not in allowed]
        return problems


_PATCH_ACTIONS = {
    "ADD_ATTRIBUTE": TypeSystem._patch_add_attribute,
    "UPDATE_ATTRIBUTE": TypeSystem._patch_update_attribute,
    "UPDATE_ATTRIBUTE_METADATA": TypeSystem._patch_update_attribute_metadata,
    "UPDATE_ENUMDEF": TypeSystem._patch_update_enumdef,
    "UPDATE_TYPEDEF_OPTIONS": TypeSystem._patch_update_typedef_options,
    "SET_SERVICE_TYPE": TypeSystem._patch_set_service_type,
    "ADD_SUPER_TYPES": TypeSystem._patch_add_super_types,
    "REMOVE_LEGACY_REF_ATTRIBUTES": TypeSystem._patch_remove_legacy_ref_attributes,
}


def _add_attribute(typedef: dict, attribute: Mapping[str, Any]) -> None:
    # AtlasStructDef.addAttribute: a def with the same name (ignoring case) is replaced.
    kept = [a for a in typedef.get("attributeDefs", []) if a["name"].lower() != attribute["name"].lower()]
    typedef["attributeDefs"] = [*kept, dict(attribute)]


def _element_types(type_name: str) -> list[str]:
    """The named types inside a type expression: array<map<string,hive_table>> -> [string, hive_table]."""
    array, mapping = _ARRAY_RE.match(type_name), _MAP_RE.match(type_name)
    if array:
        return _element_types(array.group(1))
    if mapping:
        return [t for part in _split_map_types(mapping.group(1)) for t in _element_types(part)]
    return [type_name]


def _split_map_types(inner: str) -> tuple[str, str]:
    depth = 0
    for index, char in enumerate(inner):
        depth += {"<": 1, ">": -1}.get(char, 0)
        if char == "," and depth == 0:
            return inner[:index].strip(), inner[index + 1:].strip()
    raise TypeDefError(f"bad map type map<{inner}>")


def _entity_label(entity: Mapping[str, Any]) -> str:
    attributes = entity.get("attributes")
    name = attributes.get("qualifiedName") if isinstance(attributes, Mapping) else None
    return f"{entity.get('typeName', '?')}[{name or entity.get('guid') or '?'}]"


def _references(entity: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(path, object id) for every reference with a guid inside an entity's attribute values."""
    def walk(value: Any, path: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
        if isinstance(value, Mapping):
            if "guid" in value and "attributes" not in value:
                yield path, value
            else:
                for key, item in value.items():
                    yield from walk(item, f"{path}.{key}")
        elif isinstance(value, list):
            for index, item in enumerate(value):
                yield from walk(item, f"{path}[{index}]")

    for section in ("attributes", "relationshipAttributes"):
        values = entity.get(section)
        if isinstance(values, Mapping):
            for name, value in values.items():
                yield from walk(value, name)
