"""Errors the embedded lineage service answers with, in Atlas's own codes and words.

Atlas answers an error with ``{"errorCode": "ATLAS-404-00-005", "errorMessage": ...}`` and the
HTTP status of the code (org.apache.atlas.AtlasErrorCode). The names, codes and message
templates below are Atlas's, so a client that tells errors apart by code sees what a real Atlas
would send.

    >>> error = EntityNotFound("INSTANCE_GUID_NOT_FOUND", "1234")
    >>> error.status, error.body()
    (404, {'errorCode': 'ATLAS-404-00-005', 'errorMessage': 'Given instance guid 1234 is invalid/not found'})
"""

from __future__ import annotations

#: AtlasErrorCode name -> (HTTP status, errorCode, message template with {0}, {1}, ...)
CODES: dict[str, tuple[int, str, str]] = {
    "UNKNOWN_TYPENAME": (400, "ATLAS-400-00-00A", "{0}: Unknown/invalid typename"),
    "ATTRIBUTE_UNIQUE_INVALID": (400, "ATLAS-400-00-013", "Type {0} with unique attribute {1} does not exist"),
    "TYPE_NAME_INVALID": (400, "ATLAS-400-00-014", "Type {0} with name {1} does not exist"),
    "INVALID_PARAMETERS": (400, "ATLAS-400-00-01A", "invalid parameters: {0}"),
    "CLASSIFICATION_ALREADY_ASSOCIATED": (400, "ATLAS-400-00-01B",
                                          "instance {0} already is associated with classification {1}"),
    "UNKNOWN_ATTRIBUTE": (400, "ATLAS-400-00-023", "Attribute {0} not found for type {1}"),
    "ATTRIBUTE_UPDATE_NOT_SUPPORTED": (400, "ATLAS-400-00-027", "{0}.{1} : attribute update not supported"),
    "BAD_REQUEST": (400, "ATLAS-400-00-029", "{0}"),
    "UNKNOWN_CLASSIFICATION": (400, "ATLAS-400-00-046", "{0}: Unknown/invalid classification"),
    "INVALID_SEARCH_PARAMS": (400, "ATLAS-400-00-047", "No search parameter was found. One of the following "
                              "MUST be specified in the request; typeName, classification, termName or queryText"),
    "INVALID_DSL_QUERY": (400, "ATLAS-400-00-059", "Invalid DSL query: {0} | Reason: {1}. Please refer to Atlas "
                          "DSL grammar for more information"),
    "INVALID_DSL_UNKNOWN_TYPE": (400, "ATLAS-400-00-05B", "DSL Semantic Error - {0} type not found"),
    "INVALID_DSL_UNKNOWN_ATTR_TYPE": (400, "ATLAS-400-00-05D", "DSL Semantic Error - {0} attribute not found "
                                      "for type {1}"),
    "UNKNOWN_GLOSSARY_TERM": (400, "ATLAS-400-00-06E", "{0}: Unknown/invalid glossary term"),
    "MISSING_MANDATORY_ANCHOR": (400, "ATLAS-400-00-072", "Mandatory anchor attribute is missing"),
    "GLOSSARY_QUALIFIED_NAME_CANT_BE_DERIVED": (400, "ATLAS-400-00-079", "Attributes qualifiedName and name are "
                                                "missing. Failed to derive a unique name for Glossary"),
    "GLOSSARY_TERM_QUALIFIED_NAME_CANT_BE_DERIVED": (400, "ATLAS-400-00-07A", "Attributes qualifiedName, name & "
                                                     "glossary name are missing. Failed to derive a unique name "
                                                     "for Glossary term"),
    "INVALID_OPERATOR": (400, "ATLAS-400-00-103", "Invalid operator specified for attribute: {0}"),
    "TYPE_NAME_NOT_FOUND": (404, "ATLAS-404-00-001", "Given typename {0} was invalid"),
    "TYPE_GUID_NOT_FOUND": (404, "ATLAS-404-00-002", "Given type guid {0} was invalid"),
    "INSTANCE_GUID_NOT_FOUND": (404, "ATLAS-404-00-005", "Given instance guid {0} is invalid/not found"),
    "INSTANCE_CRUD_INVALID_PARAMS": (404, "ATLAS-404-00-007", "Invalid instance creation/updation parameters "
                                     "passed : {0}"),
    "CLASSIFICATION_NOT_FOUND": (404, "ATLAS-404-00-008", "Given classification {0} was invalid"),
    "INSTANCE_BY_UNIQUE_ATTRIBUTE_NOT_FOUND": (404, "ATLAS-404-00-009", "Instance {0} with unique attribute {1} "
                                               "does not exist"),
    "REFERENCED_ENTITY_NOT_FOUND": (404, "ATLAS-404-00-00A", "Referenced entity {0} is not found"),
    "RELATIONSHIP_GUID_NOT_FOUND": (404, "ATLAS-404-00-00C", "Given relationship guid {0} is invalid/not found"),
    "METHOD_NOT_ALLOWED": (405, "ATLAS-405-00-001", "Error 405 - The request method {0} is inappropriate for "
                           "the URL: {1}"),
    "TYPE_ALREADY_EXISTS": (409, "ATLAS-409-00-001", "Given type {0} already exists"),
    "RELATIONSHIP_ALREADY_EXISTS": (409, "ATLAS-409-00-004", "relationship {0} already exists between entities "
                                    "{1} and {2}"),
    "GLOSSARY_ALREADY_EXISTS": (409, "ATLAS-409-00-007", "Glossary with name {0} already exists"),
    "GLOSSARY_TERM_ALREADY_EXISTS": (409, "ATLAS-409-00-009", "Glossary term with qualifiedName {0} already exists"),
    "INTERNAL_ERROR": (500, "ATLAS-500-00-001", "Internal server error {0}"),
    # Not Atlas's: Atlas implements every path it documents. The embedded service says so, in Atlas's shape.
    "NOT_IMPLEMENTED": (501, "ATLAS-501-00-001", "{0} {1} is an Atlas REST path the mlstream embedded lineage "
                        "service does not implement ('mlstream lineage serve --help' lists what it serves)"),
}


class AtlasError(Exception):
    """An error as Atlas reports it: ``AtlasError("INSTANCE_GUID_NOT_FOUND", guid)``."""

    def __init__(self, name: str, *args: object) -> None:
        self.name = name
        self.status, self.code, template = CODES[name]
        self.message = template.format(*args)
        super().__init__(self.message)

    def body(self) -> dict[str, str]:
        return {"errorCode": self.code, "errorMessage": self.message}


class EntityNotFound(AtlasError, LookupError):
    """An entity, relationship, type or classification the request names does not exist."""


class BadRequest(AtlasError, ValueError):
    """A request or notification Atlas would refuse (bad parameters, an entity that does not fit its type)."""
