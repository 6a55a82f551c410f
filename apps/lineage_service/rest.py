"""Atlas REST v2 under ``/api/atlas``, over the lineage graph: what Atlas users and the official
``apache-atlas`` client call, with Atlas's request and response shapes, plus the ``/lineage/`` page.

Served (EntityREST, DiscoveryREST, LineageREST, RelationshipREST, TypesREST, GlossaryREST, AdminResource):

* entities: create/update (one, bulk), get by guid / unique attribute (one, bulk), headers,
  partial update (by unique attribute, one attribute by guid), soft delete (by guid, bulk, by
  unique attribute), audit events, classifications (get, add, update, delete; by guid or unique
  attribute; bulk add), labels;
* search: basic (GET and POST), DSL, full text, attribute, quick (GET and POST), related entities;
* lineage by guid and unique attribute; relationships by guid (get, create, delete);
* typedefs: all, headers, by name or guid, create, update; admin version, status and metrics;
* glossary: glossaries and terms (list, get, create, delete), terms on entities.

A documented Atlas path that is not implemented answers 501 in Atlas's error shape, naming the
path, so a client never mistakes it for a missing entity. Every error is Atlas's
``{"errorCode", "errorMessage"}`` (see :mod:`apps.lineage_service.errors`).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aiohttp import web

from apps.lineage_service.errors import AtlasError, BadRequest
from apps.lineage_service.glossary import Glossary
from apps.lineage_service.graph import LineageGraph
from apps.lineage_service import search

log = logging.getLogger(__name__)

API = "/api/atlas"
STATIC = Path(__file__).parent.parent / "static"
#: The page's files: what /lineage/<name> may serve, and as what.
PAGE_FILES = {"lineage.html": "text/html", "lineage.js": "application/javascript", "charts.css": "text/css",
              "vendor/cytoscape.min.js": "application/javascript", "vendor/cytoscape.LICENSE": "text/plain"}
_DEF_KINDS = {"enumDefs": ("enum_defs", "ENUM", "enumdef"), "structDefs": ("struct_defs", "STRUCT", "structdef"),
              "classificationDefs": ("classification_defs", "CLASSIFICATION", "classificationdef"),
              "entityDefs": ("entity_defs", "ENTITY", "entitydef"),
              "relationshipDefs": ("relationship_defs", "RELATIONSHIP", "relationshipdef"),
              "businessMetadataDefs": ("business_metadata_defs", "BUSINESS_METADATA", "businessmetadatadef")}

#: Atlas REST paths (method, path under /api/atlas) that are documented but not served here.
NOT_IMPLEMENTED = [
    ("POST", "/v2/entity/bulk/setClassifications"), ("GET", "/v2/entity/businessmetadata/import/template"),
    ("POST", "/v2/entity/businessmetadata/import"), ("POST", "/v2/entity/guid/{guid}/businessmetadata"),
    ("DELETE", "/v2/entity/guid/{guid}/businessmetadata"), ("POST", "/v2/entity/guid/{guid}/businessmetadata/{bm}"),
    ("DELETE", "/v2/entity/guid/{guid}/businessmetadata/{bm}"), ("PUT", "/admin/purge"),
    ("POST", "/v2/search/relations"), ("GET", "/v2/search/relations"), ("GET", "/v2/search/suggestions"),
    ("GET", "/v2/search/saved"), ("POST", "/v2/search/saved"), ("PUT", "/v2/search/saved"),
    ("GET", "/v2/search/saved/{name}"), ("DELETE", "/v2/search/saved/{guid}"),
    ("GET", "/v2/search/saved/execute/{name}"), ("GET", "/v2/search/saved/execute/guid/{guid}"),
    ("POST", "/v2/search/basic/download/create_file"), ("POST", "/v2/search/dsl/download/create_file"),
    ("GET", "/v2/search/download/status"), ("GET", "/v2/search/download/{file}"), ("PUT", "/v2/relationship"),
    ("DELETE", "/v2/types/typedefs"), ("DELETE", "/v2/types/typedef/name/{name}"),
    ("PUT", "/v2/glossary/{guid}"), ("PUT", "/v2/glossary/{guid}/partial"), ("PUT", "/v2/glossary/term/{guid}"),
    ("PUT", "/v2/glossary/term/{guid}/partial"), ("GET", "/v2/glossary/{guid}/terms/headers"),
    ("GET", "/v2/glossary/{guid}/categories"), ("GET", "/v2/glossary/{guid}/categories/headers"),
    ("POST", "/v2/glossary/category"), ("POST", "/v2/glossary/categories"), ("GET", "/v2/glossary/category/{guid}"),
    ("PUT", "/v2/glossary/category/{guid}"), ("PUT", "/v2/glossary/category/{guid}/partial"),
    ("DELETE", "/v2/glossary/category/{guid}"), ("GET", "/v2/glossary/category/{guid}/terms"),
    ("GET", "/v2/glossary/category/{guid}/related"), ("GET", "/v2/glossary/terms/{guid}/related"),
    ("GET", "/v2/glossary/import/template"), ("POST", "/v2/glossary/import"), ("POST", "/v2/glossary/search"),
]


# ----- request helpers ------------------------------------------------------------------------

async def _body(request: web.Request) -> Any:
    try:
        return await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise BadRequest("BAD_REQUEST", f"the request body is not JSON: {err}") from None


def _flag(request: web.Request, name: str, default: bool = False) -> bool:
    value = request.query.get(name)
    return default if value is None else value.strip().lower() == "true"


def _int(request: web.Request, name: str, default: int) -> int:
    try:
        return int(request.query.get(name, default))
    except ValueError:
        raise BadRequest("BAD_REQUEST", f"{name} must be a number") from None


def _qualified_name(request: web.Request, type_name: str) -> str:
    """``attr:qualifiedName=``: the one unique attribute mlstream's types are looked up by."""
    unique = {k[len("attr:"):]: v for k, v in request.query.items() if k.startswith("attr:")}
    for name in unique:
        if name != "qualifiedName":
            raise BadRequest("ATTRIBUTE_UNIQUE_INVALID", type_name, name)
    if not unique.get("qualifiedName"):
        raise BadRequest("ATTRIBUTE_UNIQUE_INVALID", type_name, "")
    return unique["qualifiedName"]


def _qualified_names(request: web.Request, type_name: str) -> list[str]:
    """``attr_0:qualifiedName=..&attr_1:qualifiedName=..`` (EntityREST.getAttributesList), in index order."""
    found: dict[str, str] = {}
    for key, value in request.query.items():
        index, sep, name = key[len("attr_"):].partition(":")
        if key.startswith("attr_") and sep:
            if name != "qualifiedName":
                raise BadRequest("ATTRIBUTE_UNIQUE_INVALID", type_name, name)
            found[index] = value
    return [found[k] for k in sorted(found, key=lambda k: (len(k), k))]


def _user(request: web.Request) -> str | None:
    """The user a change is recorded for: the name in the request's basic auth (not checked: local only)."""
    header = request.headers.get("Authorization", "")
    if header.startswith("Basic "):
        try:
            return base64.b64decode(header[6:]).decode("utf-8").partition(":")[0] or None
        except (binascii.Error, UnicodeDecodeError):
            return None
    return None


def _typedef_json(kind: str, typedef: Mapping[str, Any]) -> dict:
    # Atlas gives every def a guid and a category; the model files carry neither: a stable guid per name.
    guid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"atlas-typedef:{typedef['name']}"))
    return {"category": _DEF_KINDS[kind][1], "guid": guid, **typedef}


@web.middleware
async def atlas_errors(request: web.Request, handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except AtlasError as err:
        return web.json_response(err.body(), status=err.status)
    except web.HTTPMethodNotAllowed:
        if not request.path.startswith(API):
            raise
        error = AtlasError("METHOD_NOT_ALLOWED", request.method, request.path)
        return web.json_response(error.body(), status=error.status)
    except web.HTTPException:
        raise
    except Exception as err:  # a bug: logged with its traceback, answered as Atlas does
        log.exception("%s %s failed", request.method, request.path)
        error = AtlasError("INTERNAL_ERROR", f"{type(err).__name__}: {err}")
        return web.json_response(error.body(), status=error.status)


# ----- the app ------------------------------------------------------------------------------

class AtlasRest:
    """The handlers; each runs the graph call off the event loop (SQLite calls block)."""

    def __init__(self, graph: LineageGraph) -> None:
        self.graph = graph
        self.glossary = Glossary(graph)
        self._scope: tuple[Any, search.TypeScope] | None = None
        self.started_ms = time.time_ns() // 1_000_000

    async def run(self, func, *args) -> Any:
        return await asyncio.get_running_loop().run_in_executor(None, func, *args)

    async def answer(self, func, *args) -> web.Response:
        return web.json_response(await self.run(func, *args))

    async def done(self, func, *args) -> web.Response:
        """A call Atlas answers with 204 No Content."""
        await self.run(func, *args)
        return web.Response(status=204)

    def scope(self) -> search.TypeScope:
        types = self.graph.types
        if self._scope is None or self._scope[0] is not types:  # the typedefs changed
            self._scope = (types, search.TypeScope(
                entity_types={name: types.supertypes(name) for name in types.entity_defs},
                classifications=list(types.classification_defs),
                attributes={name: list(types.attribute_defs(name)) for name in types.entity_defs}))
        return self._scope[1]

    def internal_types(self) -> set[str]:
        return {name for name, supers in self.scope().entity_types.items() if "__internal" in supers or
                name.startswith("__")}

    # ----- admin ------------------------------------------------------------------------

    async def version(self, request):
        return web.json_response({"Version": "2.4.0-mlstream", "Name": "mlstream embedded lineage service",
                                  "Description": "Atlas REST v2 subset over an embedded graph fed by ATLAS_HOOK"})

    async def status(self, request):
        return web.json_response({"Status": "ACTIVE"})

    async def metrics(self, request):
        def collect():
            counts = self.graph.counts()
            types = self.graph.types

            def with_subtypes(by_type: dict[str, int]) -> dict[str, int]:
                return {name: total for name in types.entity_defs
                        if (total := sum(n for t, n in by_type.items() if types.is_subtype(t, name)))}

            used = set().union(*(counts[k] for k in ("ACTIVE", "DELETED", "SHELL")))
            return {"data": {
                "general": {"collectionTime": time.time_ns() // 1_000_000, "entityCount": sum(
                    n for k in ("ACTIVE", "DELETED", "SHELL") for n in counts[k].values()),
                    "tagCount": len(types.classification_defs),
                    "typeCount": len(types.entity_defs) + len(types.classification_defs),
                    "typeUnusedCount": len(set(types.entity_defs) - used),
                    "stats": {"Server:startTimeStamp": self.started_ms}},
                "entity": {"entityActive": counts["ACTIVE"], "entityDeleted": counts["DELETED"],
                           "entityShell": counts["SHELL"],
                           "entityActive-typeAndSubTypes": with_subtypes(counts["ACTIVE"]),
                           "entityDeleted-typeAndSubTypes": with_subtypes(counts["DELETED"]),
                           "entityShell-typeAndSubTypes": with_subtypes(counts["SHELL"])},
                "tag": {"tagEntities": counts["TAGGED"]}, "system": {}}}
        return await self.answer(collect)

    # ----- entities ---------------------------------------------------------------------

    async def create_entity(self, request):
        body = await _body(request)
        if not isinstance(body, Mapping) or not isinstance(body.get("entity"), Mapping):
            raise BadRequest("BAD_REQUEST", "the body must be an AtlasEntityWithExtInfo: {\"entity\": {...}}")
        return await self.answer(self.graph.create_entities, {"entities": [body["entity"]],
                                 "referredEntities": body.get("referredEntities") or {}}, _user(request))

    async def create_entities(self, request):
        body = await _body(request)
        if not isinstance(body, Mapping):
            raise BadRequest("BAD_REQUEST", "the body must be an AtlasEntitiesWithExtInfo: {\"entities\": [...]}")
        return await self.answer(self.graph.create_entities, body, _user(request))

    async def entities_by_guids(self, request):
        return await self.answer(self.graph.entities, request.query.getall("guid", []))

    async def delete_by_guids(self, request):
        return await self.answer(self.graph.delete_guids, request.query.getall("guid", []), _user(request))

    async def entities_by_unique(self, request):
        type_name = request.match_info["type_name"]
        return await self.answer(self.graph.entities_by_unique, type_name, _qualified_names(request, type_name))

    async def entity_headers(self, request):
        since = _int(request, "tagUpdateStartTime", 0)

        def headers():
            return {"guidHeaderMap": {d["__guid"]: self.graph.header(d["__guid"]) for d in self.graph.documents()
                                      if d["__modificationTimestamp"] >= since}}
        return await self.answer(headers)

    async def entity(self, request):
        return await self.answer(self.graph.entity, request.match_info["guid"])

    async def update_attribute(self, request):
        name = request.query.get("name")
        if not name:
            raise BadRequest("BAD_REQUEST", "name (the attribute to set) is required")
        return await self.answer(self.graph.update_attribute, request.match_info["guid"], name,
                                 await _body(request), _user(request))

    async def delete_by_guid(self, request):
        return await self.answer(self.graph.delete_guids, [request.match_info["guid"]], _user(request))

    async def header(self, request):
        return await self.answer(self.graph.header, request.match_info["guid"])

    async def entity_by_unique(self, request):
        type_name = request.match_info["type_name"]
        name = _qualified_name(request, type_name)
        return await self.answer(lambda: {"entity": self.graph.entity_by_unique(type_name, name),
                                          "referredEntities": {}})

    async def header_by_unique(self, request):
        type_name = request.match_info["type_name"]
        name = _qualified_name(request, type_name)
        return await self.answer(lambda: self.graph.header(self.graph.guid_of(type_name, name)))

    async def partial_update(self, request):
        type_name = request.match_info["type_name"]
        name = _qualified_name(request, type_name)
        body = await _body(request)
        entity = body.get("entity", body) if isinstance(body, Mapping) else None
        if not isinstance(entity, Mapping):
            raise BadRequest("BAD_REQUEST", "the body must be an AtlasEntityWithExtInfo: {\"entity\": {...}}")
        return await self.answer(self.graph.partial_update, type_name, name, entity, _user(request))

    async def delete_by_unique(self, request):
        type_name = request.match_info["type_name"]
        return await self.answer(self.graph.delete, type_name, _qualified_name(request, type_name), _user(request))

    async def audit(self, request):
        count, action = _int(request, "count", 100), request.query.get("auditAction")

        def events():
            self.graph.header(request.match_info["guid"])  # 404 for an unknown guid
            newest_first = [e for e in reversed(self.graph.history(request.match_info["guid"]))
                            if action in (None, e["action"])]
            start = request.query.get("startKey")
            if start:
                keys = [e["eventKey"] for e in newest_first]
                newest_first = newest_first[keys.index(start):] if start in keys else []
            return newest_first[:count if count > 0 else None]
        return await self.answer(events)

    # ----- classifications and labels ---------------------------------------------------

    def _guid(self, request) -> str:
        if "guid" in request.match_info:
            return request.match_info["guid"]
        type_name = request.match_info["type_name"]
        return self.graph.guid_of(type_name, _qualified_name(request, type_name))

    async def classifications(self, request):
        def listed():
            found = self.graph.classifications(request.match_info["guid"])
            return {"list": found, "startIndex": 0, "pageSize": len(found), "totalCount": len(found),
                    "sortType": "NONE"}
        return await self.answer(listed)

    async def classification(self, request):
        name = request.match_info["name"]

        def one():
            for found in self.graph.classifications(request.match_info["guid"]):
                if found["typeName"] == name:
                    return found
            raise AtlasError("CLASSIFICATION_NOT_FOUND", name)
        return await self.answer(one)

    async def add_classifications(self, request):
        body = await _body(request)
        return await self.done(lambda: self.graph.add_classifications(self._guid(request), _list(body), _user(request)))

    async def update_classifications(self, request):
        body = await _body(request)
        return await self.done(lambda: self.graph.update_classifications(self._guid(request), _list(body),
                                                                         _user(request)))

    async def delete_classification(self, request):
        return await self.done(lambda: self.graph.delete_classification(self._guid(request),
                                                                        request.match_info["name"], _user(request)))

    async def bulk_classification(self, request):
        body = await _body(request)
        if not isinstance(body, Mapping) or not isinstance(body.get("classification"), Mapping):
            raise BadRequest("BAD_REQUEST", "the body must be a ClassificationAssociateRequest: "
                             "{\"classification\": {...}, \"entityGuids\": [...]}")

        def add():
            for guid in body.get("entityGuids") or []:
                self.graph.add_classifications(guid, [body["classification"]], _user(request))
        return await self.done(add)

    def labels(self, how: str):
        async def change(request):
            body = await _body(request) if request.can_read_body else []
            return await self.done(lambda: self.graph.change_labels(self._guid(request), _list(body), how,
                                                                    _user(request)))
        return change

    # ----- lineage and relationships ----------------------------------------------------

    def _lineage_args(self, request) -> tuple[str, int]:
        return request.query.get("direction", "BOTH"), _int(request, "depth", 3)

    async def lineage(self, request):
        return await self.answer(self.graph.lineage, request.match_info["guid"], *self._lineage_args(request))

    async def lineage_by_unique(self, request):
        type_name = request.match_info["type_name"]
        name = _qualified_name(request, type_name)
        return await self.answer(lambda: self.graph.lineage(self.graph.guid_of(type_name, name),
                                                            *self._lineage_args(request)))

    async def relationship(self, request):
        def get():
            found = self.graph.relationship(request.match_info["guid"])
            return found if _flag(request, "extendedInfo") else {**found, "referredEntities": {}}
        return await self.answer(get)

    async def create_relationship(self, request):
        body = await _body(request)
        return await self.answer(self.graph.create_relationship, body, _user(request))

    async def delete_relationship(self, request):
        return await self.done(self.graph.delete_relationship, request.match_info["guid"], _user(request))

    # ----- search -----------------------------------------------------------------------

    def _search_result(self, query_type: str, found: list, total: int, params: Mapping[str, Any],
                       extra: list[str] = ()) -> dict:
        result: dict[str, Any] = {"queryType": query_type, "searchParameters": dict(params),
                                  "approximateCount": total}
        if params.get("query"):
            result["queryText"] = params["query"]
        if found:  # Atlas leaves out what is empty (JsonInclude.NON_NULL)
            result["entities"] = [self.graph.header(d["__guid"], extra) for d in found]
        return result

    def _basic(self, params: Mapping[str, Any], query_type: str = "BASIC") -> dict:
        found, every = search.basic_search(self.graph.documents(), params, self.scope(),
                                           internal_types=self.internal_types())
        return self._search_result(query_type, found, len(every), params, list(params.get("attributes") or []))

    async def basic_get(self, request):
        query = request.query
        params = {"typeName": query.get("typeName"), "classification": query.get("classification"),
                  "query": query.get("query"), "sortBy": query.get("sortBy"), "sortOrder": query.get("sortOrder"),
                  "excludeDeletedEntities": _flag(request, "excludeDeletedEntities"),
                  "limit": _int(request, "limit", 0), "offset": _int(request, "offset", 0)}
        return await self.answer(self._basic, {k: v for k, v in params.items() if v is not None})

    async def basic_post(self, request):
        body = await _body(request)
        if not isinstance(body, Mapping):
            raise BadRequest("BAD_REQUEST", "the body must be a SearchParameters object")
        return await self.answer(self._basic, {k: v for k, v in body.items() if v is not None})

    async def attribute_search(self, request):
        name, prefix = request.query.get("attrName"), request.query.get("attrValuePrefix")
        type_name = request.query.get("typeName")
        if not name and not prefix:
            raise BadRequest("INVALID_PARAMETERS", f"attrName : {name}, attrValue: {prefix} for attribute search.")
        if not name:
            defined = self.scope().attributes.get(type_name, ())
            name = next((n for n in ("qualifiedName", "name") if n in defined), "qualifiedName")
        params = {"typeName": type_name, "entityFilters": {"attributeName": name, "operator": "STARTS_WITH",
                                                           "attributeValue": prefix},
                  "limit": _int(request, "limit", 0), "offset": _int(request, "offset", 0)}
        return await self.answer(self._basic, {k: v for k, v in params.items() if v is not None}, "ATTRIBUTE")

    async def dsl(self, request):
        text, type_name = request.query.get("query") or "", request.query.get("typeName")
        classification = request.query.get("classification")
        if type_name:  # DiscoveryService.getDslQueryUsingTypeNameClassification
            text = f"{type_name} {text}".strip()
        if classification and not request.query.get("query"):
            text += f" isa {classification}"
        limit, offset = _int(request, "limit", 0), _int(request, "offset", 0)

        def run():
            query = search.parse_dsl(text)
            found = search.dsl_search(self.graph.documents(), query, self.scope(), limit=limit, offset=offset)
            result: dict[str, Any] = {"queryType": "DSL", "queryText": text}
            if query.select:
                result["attributes"] = {"name": list(query.select),
                                        "values": [[d.get(n) for n in query.select] for d in found]}
            elif found:
                result["entities"] = [self.graph.header(d["__guid"]) for d in found]
            return result
        return await self.answer(run)

    async def full_text(self, request):
        text = request.query.get("query") or ""
        limit, offset = search.normalized_limits(_int(request, "limit", 0), _int(request, "offset", 0))
        exclude_deleted, internal = _flag(request, "excludeDeletedEntities"), self.internal_types()

        def run():
            scored = [(search.full_text_score(d, text), d) for d in self.graph.documents()
                      if d["__typeName"] not in internal and not (exclude_deleted and d["__state"] == "DELETED")]
            ranked = sorted(((s, d) for s, d in scored if s > 0),
                            key=lambda sd: (-sd[0], str(sd[1].get("qualifiedName"))))
            result: dict[str, Any] = {"queryType": "FULL_TEXT", "queryText": text}
            if ranked[offset:offset + limit]:
                result["fullTextResult"] = [{"entity": self.graph.header(d["__guid"]), "score": s}
                                            for s, d in ranked[offset:offset + limit]]
            return result
        return await self.answer(run)

    def _quick(self, params: Mapping[str, Any]) -> dict:
        if params.get("limit") is not None and int(params["limit"]) < 0 or \
                params.get("offset") is not None and int(params["offset"]) < 0:
            raise BadRequest("BAD_REQUEST", "Limit/offset should be non-negative")
        if not params.get("typeName") and not params.get("query"):
            raise BadRequest("INVALID_SEARCH_PARAMS")
        found, every = search.basic_search(self.graph.documents(), params, self.scope(),
                                           internal_types=self.internal_types())
        aggregations: dict[str, list[dict]] = {}
        for field in ("__typeName", "__state", "owner"):
            counted: dict[str, int] = {}
            for document in every:
                if document.get(field) is not None:
                    counted[str(document[field])] = counted.get(str(document[field]), 0) + 1
            aggregations[field] = [{"name": k, "count": v} for k, v in sorted(counted.items(), key=lambda kv: -kv[1])]
        return {"searchResults": self._search_result("BASIC", found, len(every), params,
                                                     list(params.get("attributes") or [])),
                "aggregationMetrics": aggregations}

    async def quick_get(self, request):
        query = request.query
        params = {"query": query.get("query"), "typeName": query.get("typeName"),
                  "excludeDeletedEntities": _flag(request, "excludeDeletedEntities"), "includeSubTypes": False,
                  "limit": _int(request, "limit", 0), "offset": _int(request, "offset", 0),
                  "sortBy": query.get("sortBy"), "sortOrder": query.get("sortOrder")}
        return await self.answer(self._quick, {k: v for k, v in params.items() if v is not None})

    async def quick_post(self, request):
        body = await _body(request)
        if not isinstance(body, Mapping):
            raise BadRequest("BAD_REQUEST", "the body must be a QuickSearchParameters object")
        return await self.answer(self._quick, {"includeSubTypes": False,
                                               **{k: v for k, v in body.items() if v is not None}})

    async def related(self, request):
        """``GET /v2/search/relationship``: the entities on the other end of one relationship attribute."""
        guid, relation = request.query.get("guid"), request.query.get("relation")
        if not guid or not relation:
            raise BadRequest("BAD_REQUEST", "guid and relation (a relationship attribute) are required")
        limit, offset = search.normalized_limits(_int(request, "limit", 0), _int(request, "offset", 0))
        exclude_deleted = _flag(request, "excludeDeletedEntities")
        attributes = request.query.getall("attributes", [])

        def run():
            entity = self.graph.entity(guid)["entity"]
            if relation not in entity["relationshipAttributes"]:
                raise BadRequest("UNKNOWN_ATTRIBUTE", relation, entity["typeName"])
            value = entity["relationshipAttributes"][relation]
            others = [r["guid"] for r in (value if isinstance(value, list) else [value] if value else [])]
            documents = {d["__guid"]: d for d in self.graph.documents() if d["__guid"] in others}
            found = [documents[g] for g in others if g in documents
                     and not (exclude_deleted and documents[g]["__state"] == "DELETED")]
            found = search.sort_documents(found, request.query.get("sortBy") or "name", request.query.get("sortOrder"))
            params = {"guid": guid, "relation": relation, "limit": limit, "offset": offset}
            return self._search_result("RELATIONSHIP", found[offset:offset + limit], len(found), params, attributes)
        return await self.answer(run)

    # ----- typedefs ---------------------------------------------------------------------

    def _typedefs(self, request) -> dict[str, list[dict]]:
        wanted_kind = (request.query.get("type") or "").lower().replace("_", "")
        name, supertype = request.query.get("name"), request.query.get("supertype")
        service_type = request.query.get("serviceType")
        result = {}
        for kind, (attribute, category, _) in _DEF_KINDS.items():
            defs = []
            if wanted_kind in ("", category.lower().replace("_", "")):
                for typedef in getattr(self.graph.types, attribute).values():
                    if name and typedef["name"] != name or service_type and typedef.get("serviceType") != service_type:
                        continue
                    if supertype and (kind != "entityDefs"
                                      or supertype not in self.graph.types.supertypes(typedef["name"])):
                        continue
                    defs.append(_typedef_json(kind, typedef))
            result[kind] = defs
        return result

    async def typedefs(self, request):
        return web.json_response(self._typedefs(request))

    async def typedef_headers(self, request):
        return web.json_response([{"guid": d["guid"], "name": d["name"], "category": d["category"],
                                   **({"serviceType": d["serviceType"]} if d.get("serviceType") else {})}
                                  for defs in self._typedefs(request).values() for d in defs])

    async def add_typedefs(self, request):
        return await self.answer(self.graph.add_typedefs, await _body(request))

    async def update_typedefs(self, request):
        return await self.answer(self.graph.update_typedefs, await _body(request))

    def typedef(self, kind_path: str | None, by: str):
        async def find(request):
            wanted = request.match_info["key"]
            kinds = [k for k, (_, _, path) in _DEF_KINDS.items() if kind_path in (None, path)]
            for kind in kinds:
                for typedef in getattr(self.graph.types, _DEF_KINDS[kind][0]).values():
                    shown = _typedef_json(kind, typedef)
                    if shown[by] == wanted:
                        return web.json_response(shown)
            raise AtlasError("TYPE_NAME_NOT_FOUND" if by == "name" else "TYPE_GUID_NOT_FOUND", wanted)
        return find

    # ----- glossary ---------------------------------------------------------------------

    def _paging(self, request) -> dict[str, Any]:
        return {"sort": request.query.get("sort", "ASC"), "limit": _int(request, "limit", -1),
                "offset": _int(request, "offset", 0)}

    async def glossaries(self, request):
        return await self.answer(lambda: self.glossary.glossaries(**self._paging(request)))

    async def create_glossary(self, request):
        return await self.answer(self.glossary.create_glossary, await _body(request), _user(request))

    async def glossary_by_guid(self, request):
        return await self.answer(self.glossary.glossary, request.match_info["guid"])

    async def glossary_detailed(self, request):
        return await self.answer(self.glossary.detailed, request.match_info["guid"])

    async def delete_glossary(self, request):
        return await self.done(self.glossary.delete_glossary, request.match_info["guid"], _user(request))

    async def glossary_terms(self, request):
        return await self.answer(lambda: self.glossary.terms(request.match_info["guid"], **self._paging(request)))

    async def create_term(self, request):
        return await self.answer(self.glossary.create_term, await _body(request), _user(request))

    async def create_terms(self, request):
        body = await _body(request)
        return await self.answer(lambda: [self.glossary.create_term(t, _user(request)) for t in _list(body)])

    async def term(self, request):
        return await self.answer(self.glossary.term, request.match_info["guid"])

    async def delete_term(self, request):
        return await self.done(self.glossary.delete_term, request.match_info["guid"], _user(request))

    async def assigned_entities(self, request):
        return await self.answer(self.glossary.assigned_entities, request.match_info["guid"])

    async def assign_term(self, request):
        body = await _body(request)
        return await self.done(self.glossary.assign, request.match_info["guid"], _list(body), _user(request))

    async def unassign_term(self, request):
        body = await _body(request)
        return await self.done(self.glossary.unassign, request.match_info["guid"], _list(body), _user(request))

    # ----- the page -----------------------------------------------------------------------

    async def page(self, request):
        name = request.match_info.get("name") or "lineage.html"
        if name not in PAGE_FILES:
            raise web.HTTPNotFound()
        return web.Response(body=(STATIC / name).read_bytes(), content_type=PAGE_FILES[name])


def _list(body: Any) -> list:
    if not isinstance(body, list):
        raise BadRequest("BAD_REQUEST", "the body must be a JSON list")
    return body


def atlas_app(graph: LineageGraph) -> web.Application:
    rest = AtlasRest(graph)
    unique = "/v2/entity/uniqueAttribute/type/{type_name}"
    routes = [
        ("GET", "/admin/version", rest.version), ("GET", "/admin/status", rest.status),
        ("GET", "/admin/metrics", rest.metrics),
        ("POST", "/v2/entity", rest.create_entity), ("POST", "/v2/entity/bulk", rest.create_entities),
        ("GET", "/v2/entity/bulk", rest.entities_by_guids), ("DELETE", "/v2/entity/bulk", rest.delete_by_guids),
        ("GET", "/v2/entity/bulk/uniqueAttribute/type/{type_name}", rest.entities_by_unique),
        ("GET", "/v2/entity/bulk/headers", rest.entity_headers),
        ("POST", "/v2/entity/bulk/classification", rest.bulk_classification),
        # the client writes this one as ".../bulk//classification"
        ("POST", "/v2/entity/bulk//classification", rest.bulk_classification),
        ("GET", "/v2/entity/guid/{guid}", rest.entity), ("PUT", "/v2/entity/guid/{guid}", rest.update_attribute),
        ("DELETE", "/v2/entity/guid/{guid}", rest.delete_by_guid),
        ("GET", "/v2/entity/guid/{guid}/header", rest.header),
        ("GET", "/v2/entity/guid/{guid}/classifications", rest.classifications),
        ("GET", "/v2/entity/guid/{guid}/classification/{name}", rest.classification),
        ("GET", unique, rest.entity_by_unique), ("PUT", unique, rest.partial_update),
        ("DELETE", unique, rest.delete_by_unique), ("GET", unique + "/header", rest.header_by_unique),
        # classifications and labels change alike for an entity named by guid or by unique attribute
        *[(method, entity + path, handler) for entity in ("/v2/entity/guid/{guid}", unique) for method, path, handler
          in (("POST", "/classifications", rest.add_classifications),
              ("PUT", "/classifications", rest.update_classifications),
              ("DELETE", "/classification/{name}", rest.delete_classification),
              ("POST", "/labels", rest.labels("set")), ("PUT", "/labels", rest.labels("add")),
              ("DELETE", "/labels", rest.labels("remove")))],
        ("GET", "/v2/entity/{guid}/audit", rest.audit),
        ("GET", "/v2/lineage/uniqueAttribute/type/{type_name}", rest.lineage_by_unique),
        ("GET", "/v2/lineage/{guid}", rest.lineage),
        ("GET", "/v2/relationship/guid/{guid}", rest.relationship),
        ("DELETE", "/v2/relationship/guid/{guid}", rest.delete_relationship),
        ("POST", "/v2/relationship", rest.create_relationship),
        ("GET", "/v2/search/basic", rest.basic_get), ("POST", "/v2/search/basic", rest.basic_post),
        ("GET", "/v2/search/dsl", rest.dsl), ("GET", "/v2/search/fulltext", rest.full_text),
        ("GET", "/v2/search/attribute", rest.attribute_search), ("GET", "/v2/search/quick", rest.quick_get),
        ("POST", "/v2/search/quick", rest.quick_post), ("GET", "/v2/search/relationship", rest.related),
        ("GET", "/v2/types/typedefs", rest.typedefs), ("POST", "/v2/types/typedefs", rest.add_typedefs),
        ("PUT", "/v2/types/typedefs", rest.update_typedefs),
        ("GET", "/v2/types/typedefs/headers", rest.typedef_headers),
        ("GET", "/v2/types/typedef/name/{key}", rest.typedef(None, "name")),
        ("GET", "/v2/types/typedef/guid/{key}", rest.typedef(None, "guid")),
        *[("GET", f"/v2/types/{path}/{by}/{{key}}", rest.typedef(path, by))
          for _, _, path in _DEF_KINDS.values() for by in ("name", "guid")],
        ("GET", "/v2/glossary", rest.glossaries), ("POST", "/v2/glossary", rest.create_glossary),
        ("POST", "/v2/glossary/term", rest.create_term), ("POST", "/v2/glossary/terms", rest.create_terms),
        ("GET", "/v2/glossary/term/{guid}", rest.term), ("DELETE", "/v2/glossary/term/{guid}", rest.delete_term),
        ("GET", "/v2/glossary/terms/{guid}/assignedEntities", rest.assigned_entities),
        ("POST", "/v2/glossary/terms/{guid}/assignedEntities", rest.assign_term),
        ("PUT", "/v2/glossary/terms/{guid}/assignedEntities", rest.unassign_term),
        ("DELETE", "/v2/glossary/terms/{guid}/assignedEntities", rest.unassign_term),
        ("GET", "/v2/glossary/{guid}", rest.glossary_by_guid), ("DELETE", "/v2/glossary/{guid}", rest.delete_glossary),
        ("GET", "/v2/glossary/{guid}/detailed", rest.glossary_detailed),
        ("GET", "/v2/glossary/{guid}/terms", rest.glossary_terms),
    ]

    def not_implemented(method: str, path: str):
        async def handler(request):
            raise AtlasError("NOT_IMPLEMENTED", method, request.path)
        return handler

    app = web.Application(middlewares=[atlas_errors])
    for method, path, handler in [*routes, *[(m, p, not_implemented(m, p)) for m, p in NOT_IMPLEMENTED]]:
        # The apache-atlas client writes some paths with a trailing slash ("v2/entity/bulk/").
        app.router.add_route(method, API + path, handler)
        app.router.add_route(method, API + path + "/", handler)
    async def to_page(request):
        raise web.HTTPFound("/lineage/")

    app.router.add_get("/", to_page)
    app.router.add_get("/lineage/", rest.page)
    app.router.add_get("/lineage/{name:.+}", rest.page)
    return app
