"""Atlas's business glossary over the lineage graph: glossaries and terms, and terms on entities.

As in Atlas (GlossaryService), a glossary is an ``AtlasGlossary`` entity, a term an
``AtlasGlossaryTerm`` anchored to it (``AtlasGlossaryTermAnchor``), and a term on an entity an
``AtlasGlossarySemanticAssignment`` relationship: the entity's ``meanings``. This module turns
those entities into the AtlasGlossary / AtlasGlossaryTerm JSON of ``/v2/glossary``. Categories,
related terms and imports are not implemented.

Names as Atlas derives them: a glossary's qualifiedName is its name, a term's is
``<term name>@<glossary qualifiedName>``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from apps.lineage_service.errors import AtlasError, BadRequest, EntityNotFound
from apps.lineage_service.graph import LineageGraph

GLOSSARY, TERM = "AtlasGlossary", "AtlasGlossaryTerm"
_GLOSSARY_FIELDS = ("shortDescription", "longDescription", "language", "usage", "additionalAttributes")
_TERM_FIELDS = ("shortDescription", "longDescription", "examples", "abbreviation", "usage", "additionalAttributes")


class Glossary:
    def __init__(self, graph: LineageGraph) -> None:
        self.graph = graph

    def _entity(self, guid: str, type_name: str) -> dict:
        entity = self.graph.entity(guid)["entity"]
        if entity["typeName"] != type_name:
            raise EntityNotFound("INSTANCE_GUID_NOT_FOUND", guid)
        return entity

    def _exists(self, type_name: str, qualified_name: str) -> bool:
        try:
            return self.graph.entity_by_unique(type_name, qualified_name)["status"] != "DELETED"
        except EntityNotFound:
            return False

    # ----- glossaries -------------------------------------------------------------------

    def glossaries(self, *, sort: str = "ASC", limit: int = -1, offset: int = 0) -> list[dict]:
        """``GET /v2/glossary``: the glossaries that are not deleted, by name."""
        guids = [d["__guid"] for d in self.graph.documents()
                 if d["__typeName"] == GLOSSARY and d["__state"] != "DELETED"]
        found = sorted((self.glossary(g) for g in guids), key=lambda g: g["name"].lower(),
                       reverse=str(sort).upper() == "DESC")
        return found[offset:] if limit < 0 else found[offset:offset + limit]

    def glossary(self, guid: str) -> dict:
        entity = self._entity(guid, GLOSSARY)
        attributes = entity["attributes"]
        return {"guid": guid, "qualifiedName": attributes["qualifiedName"], "name": attributes["name"],
                **{k: attributes[k] for k in _GLOSSARY_FIELDS if attributes.get(k) is not None},
                "terms": [{"termGuid": t["guid"], "relationGuid": t["relationshipGuid"],
                           "displayText": t["displayText"]}
                          for t in entity["relationshipAttributes"].get("terms") or []
                          if t["entityStatus"] != "DELETED"],
                "categories": [], "classifications": entity["classifications"]}

    def detailed(self, guid: str) -> dict:
        """``GET /v2/glossary/{guid}/detailed``: the glossary with its terms in full (termInfo)."""
        glossary = self.glossary(guid)
        return {**glossary, "termInfo": {t["termGuid"]: self.term(t["termGuid"]) for t in glossary["terms"]},
                "categoryInfo": {}}

    def create_glossary(self, body: Mapping[str, Any], user: str | None) -> dict:
        name = body.get("name") or body.get("qualifiedName")
        if not name:
            raise BadRequest("GLOSSARY_QUALIFIED_NAME_CANT_BE_DERIVED")
        qualified_name = body.get("qualifiedName") or name
        if self._exists(GLOSSARY, qualified_name):
            raise AtlasError("GLOSSARY_ALREADY_EXISTS", qualified_name)
        attributes = {"qualifiedName": qualified_name, "name": name,
                      **{k: body[k] for k in _GLOSSARY_FIELDS if body.get(k) is not None}}
        result = self.graph.create_entities({"entities": [{"typeName": GLOSSARY, "guid": "-1",
                                                           "attributes": attributes}]}, user)
        return self.glossary(result["guidAssignments"]["-1"])

    def delete_glossary(self, guid: str, user: str | None) -> None:
        """``DELETE /v2/glossary/{guid}``: the glossary and its terms (they are anchored in it)."""
        self._entity(guid, GLOSSARY)
        self.graph.delete_guids([guid], user)

    # ----- terms ------------------------------------------------------------------------

    def term(self, guid: str) -> dict:
        entity = self._entity(guid, TERM)
        attributes = entity["attributes"]
        anchor = entity["relationshipAttributes"].get("anchor")
        return {"guid": guid, "qualifiedName": attributes["qualifiedName"], "name": attributes["name"],
                **{k: attributes[k] for k in _TERM_FIELDS if attributes.get(k) is not None},
                "anchor": {"glossaryGuid": anchor["guid"], "relationGuid": anchor["relationshipGuid"],
                           "displayText": anchor["displayText"]} if anchor else None,
                "assignedEntities": [{k: e[k] for k in ("guid", "typeName", "entityStatus", "displayText",
                                                        "relationshipType", "relationshipGuid", "relationshipStatus")}
                                     for e in entity["relationshipAttributes"].get("assignedEntities") or []],
                "categories": [], "classifications": entity["classifications"]}

    def terms(self, glossary_guid: str, *, sort: str = "ASC", limit: int = -1, offset: int = 0) -> list[dict]:
        """``GET /v2/glossary/{guid}/terms``."""
        found = sorted((self.term(t["termGuid"]) for t in self.glossary(glossary_guid)["terms"]),
                       key=lambda t: t["name"].lower(), reverse=str(sort).upper() == "DESC")
        return found[offset:] if limit < 0 else found[offset:offset + limit]

    def create_term(self, body: Mapping[str, Any], user: str | None) -> dict:
        anchor = body.get("anchor") or {}
        if not anchor.get("glossaryGuid"):
            raise BadRequest("MISSING_MANDATORY_ANCHOR")
        glossary = self.glossary(anchor["glossaryGuid"])
        if not body.get("name"):
            raise BadRequest("GLOSSARY_TERM_QUALIFIED_NAME_CANT_BE_DERIVED")
        qualified_name = f"{body['name']}@{glossary['qualifiedName']}"
        if self._exists(TERM, qualified_name):
            raise AtlasError("GLOSSARY_TERM_ALREADY_EXISTS", qualified_name)
        attributes = {"qualifiedName": qualified_name, "name": body["name"],
                      **{k: body[k] for k in _TERM_FIELDS if body.get(k) is not None}}
        result = self.graph.create_entities({"entities": [{
            "typeName": TERM, "guid": "-1", "attributes": attributes, "relationshipAttributes": {"anchor": {
                "guid": glossary["guid"], "typeName": GLOSSARY, "relationshipType": "AtlasGlossaryTermAnchor"}}}]},
            user)
        guid = result["guidAssignments"]["-1"]
        if body.get("assignedEntities"):
            self.assign(guid, body["assignedEntities"], user)
        return self.term(guid)

    def delete_term(self, guid: str, user: str | None) -> None:
        """``DELETE /v2/glossary/term/{guid}``; a term still on entities is refused, as in Atlas."""
        assigned = self.term(guid)["assignedEntities"]
        if assigned:
            raise BadRequest("BAD_REQUEST", f"Term (guid={guid}) cannot be deleted as it has been assigned to "
                             f"{len(assigned)} entities.")
        self.graph.delete_guids([guid], user)

    def assigned_entities(self, term_guid: str) -> list[dict]:
        return self.term(term_guid)["assignedEntities"]

    def assign(self, term_guid: str, related: Iterable[Mapping[str, Any]], user: str | None) -> None:
        """``POST /v2/glossary/terms/{guid}/assignedEntities`` with AtlasRelatedObjectIds."""
        self._entity(term_guid, TERM)
        self.graph.assign_term(term_guid, [self._guid(r) for r in related], user)

    def unassign(self, term_guid: str, related: Iterable[Mapping[str, Any]], user: str | None) -> None:
        """``PUT`` (or ``DELETE``) ``/v2/glossary/terms/{guid}/assignedEntities``."""
        self._entity(term_guid, TERM)
        self.graph.unassign_term(term_guid, [self._guid(r) for r in related], user)

    def _guid(self, related: Mapping[str, Any]) -> str:
        if related.get("guid"):
            return related["guid"]
        unique = related.get("uniqueAttributes") or {}
        if related.get("typeName") and unique.get("qualifiedName"):
            return self.graph.guid_of(related["typeName"], unique["qualifiedName"])
        raise BadRequest("INVALID_PARAMETERS", f"an assigned entity needs a guid or typeName + uniqueAttributes: "
                         f"{dict(related)!r:.200}")
