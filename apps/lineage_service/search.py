"""Atlas's discovery over the lineage graph: basic search, its filters, full text, and a DSL subset.

Everything works on *documents*: an entity's attributes plus Atlas's system attributes
(``__guid``, ``__typeName``, ``__state``, ``__timestamp``, ``__modificationTimestamp``,
``__createdBy``, ``__modifiedBy``, ``__classificationNames``, ``__labels``, ``__meanings``), as
:meth:`LineageGraph.documents <apps.lineage_service.graph.LineageGraph.documents>` makes them.
The graph is scanned, there is no index: enough for the thousands of entities of a project.

* :func:`basic_search` takes Atlas's SearchParameters (``typeName`` with subtypes,
  ``classification``, ``query``, ``termName``, ``entityFilters``, ``excludeDeletedEntities``,
  ``sortBy``/``sortOrder``, ``limit``/``offset``) and :func:`matches` evaluates a FilterCriteria
  tree with Atlas's operators;
* :func:`parse_dsl` reads the DSL subset: ``[from] <type or classification> [where] <expr>
  [select a, b] [orderby a [asc|desc]] [limit n [offset m]]`` where ``<expr>`` combines
  ``<attr> <op> <value>`` (``= != < <= > >= like``), ``<type> isa <classification>``,
  ``<type> has <attr>`` and ``hasTerm``, with ``and``, ``or`` and parentheses.

    >>> query = parse_dsl("kafka_topic where name = 'records' and partitionCount >= 2 limit 5")
    >>> query.source, query.limit, [c["operator"] for c in query.where["criterion"]]
    ('kafka_topic', 5, ['EQ', 'GTE'])
    >>> doc = {"__typeName": "kafka_topic", "name": "records", "partitionCount": 3}
    >>> matches(query.where, doc)
    True
    >>> matches({"attributeName": "name", "operator": "startsWith", "attributeValue": "REC"}, doc)
    True
"""

from __future__ import annotations

import fnmatch
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from apps.lineage_service.errors import BadRequest

#: atlas.search.defaultlimit and atlas.search.maxlimit (AtlasConfiguration), as QueryParams applies them.
DEFAULT_LIMIT, MAX_LIMIT = 100, 10000
ALL_ENTITY_TYPES = "_ALL_ENTITY_TYPES"
ALL_CLASSIFIED, NOT_CLASSIFIED = "_CLASSIFIED", "_NOT_CLASSIFIED"
SYSTEM_ATTRIBUTES = frozenset({"__guid", "__typeName", "__state", "__timestamp", "__modificationTimestamp",
                               "__createdBy", "__modifiedBy", "__isIncomplete", "__classificationNames",
                               "__labels", "__meanings"})
#: What full text looks at: names and descriptions (Atlas indexes every string attribute; these are the ones
#: people search for).
TEXT_ATTRIBUTES = ("name", "displayName", "qualifiedName", "description", "userDescription", "shortDescription",
                   "longDescription")

#: SearchParameters.Operator: every symbol Atlas accepts -> the operator's name.
OPERATORS = {symbol: name for name, symbols in {
    "LT": ("<", "lt"), "GT": (">", "gt"), "LTE": ("<=", "lte"), "GTE": (">=", "gte"), "EQ": ("=", "eq"),
    "NEQ": ("!=", "neq"), "IN": ("in", "IN"), "LIKE": ("like", "LIKE"),
    "STARTS_WITH": ("startsWith", "STARTSWITH", "begins_with", "BEGINS_WITH"),
    "ENDS_WITH": ("endsWith", "ENDSWITH", "ends_with", "ENDS_WITH"), "CONTAINS": ("contains", "CONTAINS"),
    "NOT_CONTAINS": ("not_contains", "NOT_CONTAINS"),
    "CONTAINS_ANY": ("containsAny", "CONTAINSANY", "contains_any", "CONTAINS_ANY"),
    "CONTAINS_ALL": ("containsAll", "CONTAINSALL", "contains_all", "CONTAINS_ALL"),
    "IS_NULL": ("isNull", "ISNULL", "is_null", "IS_NULL"), "NOT_NULL": ("notNull", "NOTNULL", "not_null", "NOT_NULL"),
    "TIME_RANGE": ("timerange", "TIMERANGE", "time_range", "TIME_RANGE"),
    "NOT_EMPTY": ("notEmpty", "NOTEMPTY", "not_empty", "NOT_EMPTY"),
}.items() for symbol in (name, *symbols)}
_NO_VALUE = {"IS_NULL", "NOT_NULL", "NOT_EMPTY"}
#: The DSL's like, a whole-value match (basic search's LIKE matches anywhere in the value).
DSL_LIKE = "DSL_LIKE"
_DAY_MS = 86_400_000


# ----- filters ------------------------------------------------------------------------------

def operator_name(symbol: Any, attribute: str) -> str:
    name = (DSL_LIKE if symbol == DSL_LIKE else OPERATORS.get(symbol)) if isinstance(symbol, str) else None
    if name is None:
        raise BadRequest("INVALID_OPERATOR", attribute)
    return name


def filter_attributes(criteria: Mapping[str, Any] | None) -> set[str]:
    """The attribute names a FilterCriteria tree tests."""
    if not criteria:
        return set()
    names = {criteria["attributeName"]} if criteria.get("attributeName") else set()
    for child in criteria.get("criterion") or []:
        names |= filter_attributes(child)
    return names


def matches(criteria: Mapping[str, Any] | None, document: Mapping[str, Any]) -> bool:
    """Whether ``document`` passes a FilterCriteria: ``{condition, criterion: [...]}`` or a leaf
    ``{attributeName, operator, attributeValue}``; an empty filter passes everything."""
    if not criteria:
        return True
    children = criteria.get("criterion")
    if children:
        condition = str(criteria.get("condition") or "").upper()
        if condition not in ("AND", "OR"):
            raise BadRequest("BAD_REQUEST", "Condition (AND/OR) must be specified when using multiple filters.")
        results = (matches(child, document) for child in children if child)
        return all(results) if condition == "AND" else any(results)
    attribute = criteria.get("attributeName")
    if not attribute:
        return True
    operator = operator_name(criteria.get("operator"), attribute)
    expected = criteria.get("attributeValue")
    if operator not in _NO_VALUE and (expected is None or (isinstance(expected, str) and not expected.strip())):
        raise BadRequest("BAD_REQUEST", f"Attribute value is missing for attribute {attribute}")
    return _test(operator, document.get(attribute), expected)


def _test(operator: str, actual: Any, expected: Any) -> bool:
    if operator == "IS_NULL":
        return actual is None or actual == "" or actual == []
    if operator == "NOT_NULL":
        return not (actual is None or actual == "")
    if operator == "NOT_EMPTY":
        return actual not in (None, "", [], {})
    if actual is None:
        return operator in ("NEQ", "NOT_CONTAINS")
    if isinstance(actual, list):
        if operator in ("CONTAINS_ANY", "CONTAINS_ALL"):
            wanted = _values(expected)
            found = [any(_test("EQ", item, w) for item in actual) for w in wanted]
            return all(found) if operator == "CONTAINS_ALL" else any(found)
        if operator in ("NEQ", "NOT_CONTAINS"):
            return all(_test(operator, item, expected) for item in actual)
        return any(_test(operator, item, expected) for item in actual)
    if operator == "IN":
        return any(_test("EQ", actual, value) for value in _values(expected))
    if operator == "TIME_RANGE":
        start, end = _time_range(expected)
        return isinstance(actual, (int, float)) and start <= actual <= end
    if operator in ("LIKE", "STARTS_WITH", "ENDS_WITH", "CONTAINS", "NOT_CONTAINS", "DSL_LIKE", "CONTAINS_ANY",
                    "CONTAINS_ALL"):
        text, pattern = str(actual).lower(), str(expected).lower()
        return {"LIKE": lambda: re.search(_wildcards(pattern), text) is not None,
                "DSL_LIKE": lambda: re.fullmatch(_wildcards(pattern), text) is not None,
                "STARTS_WITH": lambda: text.startswith(pattern), "ENDS_WITH": lambda: text.endswith(pattern),
                "CONTAINS": lambda: pattern in text, "NOT_CONTAINS": lambda: pattern not in text,
                "CONTAINS_ANY": lambda: text in [v.lower() for v in _values(expected)],
                "CONTAINS_ALL": lambda: [text] == [v.lower() for v in _values(expected)]}[operator]()
    left, right = _comparable(actual, expected)
    try:
        return {"EQ": left == right, "NEQ": left != right, "LT": left < right, "GT": left > right,
                "LTE": left <= right, "GTE": left >= right}[operator]
    except TypeError:  # a number against text that is not one
        return operator == "NEQ"


def _comparable(actual: Any, expected: Any) -> tuple[Any, Any]:
    """The stored value and the filter's value (text in a REST filter) as values of one kind."""
    if isinstance(actual, bool):
        return actual, expected if isinstance(expected, bool) else str(expected).strip().lower() == "true"
    if isinstance(actual, (int, float)) and not isinstance(expected, (int, float)):
        text = str(expected).strip()
        try:
            return actual, float(text)
        except ValueError:
            try:  # a date attribute (epoch ms) against an ISO date, as the DSL takes them
                when = datetime.fromisoformat(text.replace("Z", "+00:00"))
                return actual, (when if when.tzinfo else when.replace(tzinfo=timezone.utc)).timestamp() * 1000
            except ValueError:
                return actual, text
    if isinstance(actual, str) and not isinstance(expected, str):
        return actual, str(expected).lower() if isinstance(expected, bool) else (
            str(int(expected)) if isinstance(expected, float) and expected.is_integer() else str(expected))
    return actual, expected


def _values(expected: Any) -> list[str]:
    if isinstance(expected, list):
        return [str(v) for v in expected]
    text = str(expected).strip()
    if text[:1] in "[(" and text[-1:] in "])":
        text = text[1:-1]
    return [v.strip().strip("'\"") for v in text.split(",") if v.strip()]


def _wildcards(pattern: str) -> str:
    return "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)


def _time_range(expected: Any) -> tuple[float, float]:
    """TIME_RANGE's value: ``<start ms>,<end ms>`` or one of Atlas's named ranges."""
    now = time.time() * 1000
    today = now - now % _DAY_MS
    named = {"TODAY": (today, now), "YESTERDAY": (today - _DAY_MS, today), "LAST_7_DAYS": (now - 7 * _DAY_MS, now),
             "LAST_30_DAYS": (now - 30 * _DAY_MS, now), "LAST_3_MONTHS": (now - 91 * _DAY_MS, now),
             "LAST_6_MONTHS": (now - 182 * _DAY_MS, now), "LAST_12_MONTHS": (now - 365 * _DAY_MS, now)}
    text = str(expected).strip()
    if text.upper() in named:
        return named[text.upper()]
    try:
        start, end = (float(part) for part in text.split(","))
    except ValueError:
        raise BadRequest("BAD_REQUEST", f"TIME_RANGE takes '<start ms>,<end ms>' or one of {', '.join(named)}, "
                         f"not {text!r}") from None
    return start, end


# ----- basic search -------------------------------------------------------------------------

def normalized_limits(limit: Any, offset: Any) -> tuple[int, int]:
    """QueryParams.getNormalizedParams: a limit outside 1..MAX_LIMIT is the default; a negative offset is 0."""
    try:
        limit, offset = int(limit or 0), int(offset or 0)
    except (TypeError, ValueError):
        raise BadRequest("BAD_REQUEST", "limit and offset must be numbers") from None
    return (limit if 0 < limit <= MAX_LIMIT else DEFAULT_LIMIT), max(offset, 0)


@dataclass(frozen=True)
class TypeScope:
    """What a search may look at: entity types (with subtypes) and the classifications that exist."""

    entity_types: Mapping[str, Sequence[str]]  # type -> its supertypes
    classifications: Sequence[str]
    attributes: Mapping[str, Iterable[str]]    # type -> attribute names (inherited included)

    def types_named(self, type_name: str | None, include_subtypes: bool = True) -> set[str] | None:
        """The entity types a ``typeName`` parameter covers (None: all); comma-separated names allowed."""
        if not type_name or type_name == ALL_ENTITY_TYPES:
            return None
        covered: set[str] = set()
        for name in (n.strip() for n in type_name.split(",") if n.strip()):
            if name not in self.entity_types:
                raise BadRequest("UNKNOWN_TYPENAME", name)
            covered |= {t for t, supers in self.entity_types.items()
                        if t == name or (include_subtypes and name in supers)}
        return covered

    def check_attributes(self, types: set[str] | None, names: Iterable[str]) -> None:
        """Atlas refuses a filter or sort on an attribute the searched type does not have."""
        if types is None:
            return
        known = set(SYSTEM_ATTRIBUTES)
        for type_name in types:
            known |= set(self.attributes.get(type_name, ()))
        for name in names:
            if name not in known:
                raise BadRequest("UNKNOWN_ATTRIBUTE", name, ",".join(sorted(types)))

    def classification_test(self, classification: str | None):
        """A test of a document's classifications for a ``classification`` parameter (None: no test)."""
        if not classification:
            return None
        if classification in (ALL_CLASSIFIED, "*"):
            return lambda names: bool(names)
        if classification == NOT_CLASSIFIED:
            return lambda names: not names
        if "*" in classification:
            return lambda names: any(fnmatch.fnmatchcase(n, classification) for n in names)
        if classification not in self.classifications:
            raise BadRequest("UNKNOWN_CLASSIFICATION", classification)
        return lambda names: classification in names


def basic_search(documents: Iterable[Mapping[str, Any]], params: Mapping[str, Any], scope: TypeScope,
                 *, internal_types: set[str] = frozenset()) -> tuple[list[Mapping[str, Any]], list[Mapping[str, Any]]]:
    """The documents a SearchParameters selects, sorted and cut to limit/offset; and all it selects.

    ``internal_types`` (glossary types and the like) are only searched when asked for by name, as in Atlas.
    """
    type_name, classification = params.get("typeName"), params.get("classification")
    query, term = params.get("query"), params.get("termName")
    entity_filters = params.get("entityFilters") or None
    if params.get("limit") is not None and int(params["limit"]) < 0 or \
            params.get("offset") is not None and int(params["offset"]) < 0:
        raise BadRequest("BAD_REQUEST", "Limit/offset should be non-negative")
    if not type_name and filter_attributes(entity_filters):
        raise BadRequest("BAD_REQUEST", "EntityFilters specified without Type name")
    if not (type_name or classification or query or term):
        raise BadRequest("INVALID_SEARCH_PARAMS")
    types = scope.types_named(type_name, params.get("includeSubTypes", True) is not False)
    sort_by = params.get("sortBy")
    scope.check_attributes(types, filter_attributes(entity_filters) | ({sort_by} if sort_by else set()))
    classified = scope.classification_test(classification)
    documents = list(documents)
    if term and not any(d["__typeName"] == "AtlasGlossaryTerm" and d.get("qualifiedName") == term
                        for d in documents):
        raise BadRequest("UNKNOWN_GLOSSARY_TERM", term)
    found = []
    for document in documents:
        if types is None and document["__typeName"] in internal_types:
            continue
        if types is not None and document["__typeName"] not in types:
            continue
        if params.get("excludeDeletedEntities") and document["__state"] == "DELETED":
            continue
        if classified is not None and not classified(document["__classificationNames"]):
            continue
        if term and term not in document["__meanings"]:
            continue
        if query and full_text_score(document, query) == 0:
            continue
        if not matches(entity_filters, document):
            continue
        found.append(document)
    limit, offset = normalized_limits(params.get("limit"), params.get("offset"))
    ordered = sort_documents(found, sort_by or "name", params.get("sortOrder"))
    return ordered[offset:offset + limit], ordered


def sort_documents(documents: list[Mapping[str, Any]], attribute: str, order: str | None) -> list:
    """Sorted by ``attribute`` (then qualifiedName); documents without it last, whatever the order."""
    descending = str(order or "ASCENDING").upper() in ("DESCENDING", "DESC")
    having = [d for d in documents if d.get(attribute) is not None]
    having.sort(key=lambda d: (_sort_key(d[attribute]), str(d.get("qualifiedName"))), reverse=descending)
    lacking = sorted((d for d in documents if d.get(attribute) is None), key=lambda d: str(d.get("qualifiedName")))
    return having + lacking


def _sort_key(value: Any) -> tuple:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (0, value, "")
    return (1, 0, str(value).lower())


def full_text_score(document: Mapping[str, Any], query: str) -> float:
    """0 if some word of ``query`` (``*`` a wildcard) is in none of the names and descriptions; else a score,
    a word found in a name counting double."""
    score = 0.0
    for word in query.lower().split():
        pattern = re.compile(_wildcards(word.strip("\"'")))
        hits = [name for name in TEXT_ATTRIBUTES if isinstance(document.get(name), str)
                and pattern.search(document[name].lower())]
        if not hits:
            return 0.0
        score += 2.0 if {"name", "displayName", "qualifiedName"} & set(hits) else 1.0
    return score


# ----- DSL ----------------------------------------------------------------------------------

_KEYWORDS = {"from", "where", "and", "or", "select", "orderby", "groupby", "limit", "offset", "isa", "is", "has",
             "hasterm", "like", "asc", "desc", "as", "true", "false", "count", "max", "min", "sum", "lt", "lte",
             "gt", "gte", "eq", "neq"}
_TOKEN = re.compile(r"""\s*(?:(?P<string>'[^']*'|"[^"]*"|`[^`]*`)|(?P<number>[+-]?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
                        |(?P<op><=|>=|!=|=|<|>)|(?P<punct>[(),\[\]])|(?P<word>[A-Za-z_$][\w.$]*))""", re.VERBOSE)
_DSL_OPERATORS = {"=": "EQ", "eq": "EQ", "!=": "NEQ", "neq": "NEQ", "<": "LT", "lt": "LT", "<=": "LTE",
                  "lte": "LTE", ">": "GT", "gt": "GT", ">=": "GTE", "gte": "GTE", "like": DSL_LIKE}


@dataclass(frozen=True)
class DslQuery:
    source: str                          # an entity type or a classification
    where: Mapping[str, Any] | None      # a FilterCriteria tree
    select: tuple[str, ...] = ()
    order_by: str | None = None
    descending: bool = False
    limit: int | None = None
    offset: int | None = None


class _Tokens:
    def __init__(self, text: str) -> None:
        self.text, self.items, position = text, [], 0
        while position < len(text):
            if text[position:].strip() == "":
                break
            match = _TOKEN.match(text, position)
            if match is None or match.end() == position:
                raise _dsl_error(text, f"unexpected text at {text[position:position + 20].strip()!r}")
            kind = match.lastgroup
            value = match.group(kind)
            if kind == "word" and value.lower() in _KEYWORDS:
                kind, value = "keyword", value.lower()
            self.items.append((kind, value))
            position = match.end()
        self.index = 0

    def peek(self, offset: int = 0) -> tuple[str, str] | tuple[None, None]:
        at = self.index + offset
        return self.items[at] if at < len(self.items) else (None, None)

    def take(self, *keywords: str) -> str | None:
        kind, value = self.peek()
        if kind == "keyword" and value in keywords:
            self.index += 1
            return value
        return None

    def expect(self, kind: str, what: str) -> str:
        found_kind, value = self.peek()
        if found_kind != kind:
            raise _dsl_error(self.text, f"expected {what}, found {value or 'the end'}")
        self.index += 1
        return value


def _dsl_error(text: str, reason: str) -> BadRequest:
    return BadRequest("INVALID_DSL_QUERY", text, reason)


def parse_dsl(text: str) -> DslQuery:
    """The DSL subset (see the module's doc); anything else is INVALID_DSL_QUERY, naming what is not supported."""
    tokens = _Tokens(text or "")
    tokens.take("from")
    source = tokens.expect("word", "a type or classification name")
    where = None
    kind, value = tokens.peek()
    if kind == "keyword" and value in ("isa", "is", "has", "hasterm"):
        tokens.index -= 1  # "kafka_topic isa PII": a condition on the source itself
        where = _expression(tokens, source)
    elif tokens.take("where") or kind == "word" or (kind, value) == ("punct", "("):
        where = _expression(tokens, source)
    select: tuple[str, ...] = ()
    order_by, descending, limit, offset = None, False, None, None
    if tokens.take("groupby"):
        raise _dsl_error(text, "groupby is not supported by the embedded lineage service")
    if tokens.take("select"):
        names = []
        while True:
            if tokens.peek()[0] == "keyword" and tokens.peek()[1] in ("count", "max", "min", "sum"):
                raise _dsl_error(text, "aggregations are not supported by the embedded lineage service")
            names.append(_attribute(tokens.expect("word", "an attribute to select"), source))
            if tokens.peek() != ("punct", ","):
                break
            tokens.index += 1
        select = tuple(names)
    if tokens.take("orderby"):
        order_by = _attribute(tokens.expect("word", "an attribute to order by"), source)
        descending = tokens.take("asc", "desc") == "desc"
    if tokens.take("limit"):
        limit = int(float(tokens.expect("number", "a number after limit")))
        if tokens.take("offset"):
            offset = int(float(tokens.expect("number", "a number after offset")))
    elif tokens.take("offset"):
        offset = int(float(tokens.expect("number", "a number after offset")))
    if tokens.peek() != (None, None):
        raise _dsl_error(text, f"unexpected {tokens.peek()[1]!r}; the embedded lineage service reads "
                         "'[from] <type> [where] <condition> [select ...] [orderby ...] [limit n [offset m]]'")
    return DslQuery(source, where, select, order_by, descending, limit, offset)


def _expression(tokens: _Tokens, source: str) -> Mapping[str, Any]:
    terms = [_and_expression(tokens, source)]
    while tokens.take("or"):
        terms.append(_and_expression(tokens, source))
    return terms[0] if len(terms) == 1 else {"condition": "OR", "criterion": terms}


def _and_expression(tokens: _Tokens, source: str) -> Mapping[str, Any]:
    factors = [_factor(tokens, source)]
    while tokens.take("and"):
        factors.append(_factor(tokens, source))
    return factors[0] if len(factors) == 1 else {"condition": "AND", "criterion": factors}


def _factor(tokens: _Tokens, source: str) -> Mapping[str, Any]:
    if tokens.peek() == ("punct", "("):
        tokens.index += 1
        inner = _expression(tokens, source)
        tokens.expect("punct", "')'")
        return inner
    name = tokens.expect("word", "an attribute name")
    if tokens.peek()[0] == "keyword" and tokens.peek()[1] in ("isa", "is", "has", "hasterm"):
        return _condition_on(tokens, name, source)
    kind, symbol = tokens.peek()
    operator = _DSL_OPERATORS.get(symbol) if kind in ("op", "keyword") else None
    if operator is None:
        raise _dsl_error(tokens.text, f"expected an operator (= != < <= > >= like) after {name}, found "
                         f"{symbol or 'the end'}")
    tokens.index += 1
    value = _literal(tokens)
    if isinstance(value, list) and operator == "EQ":
        operator = "IN"  # name = ['a', 'b']
    return {"attributeName": _attribute(name, source), "operator": operator, "attributeValue": value}


def _condition_on(tokens: _Tokens, name: str, source: str) -> Mapping[str, Any]:
    keyword = tokens.take("isa", "is", "has", "hasterm")
    if keyword in ("isa", "is"):
        return {"attributeName": "__classificationNames", "operator": "EQ",
                "attributeValue": tokens.expect("word", "a classification name")}
    if keyword == "has":
        return {"attributeName": _attribute(tokens.expect("word", "an attribute name"), source),
                "operator": "NOT_NULL"}
    kind, value = tokens.peek()
    tokens.index += 1
    return {"attributeName": "__meanings", "operator": "EQ",
            "attributeValue": value[1:-1] if kind == "string" else value}


def _attribute(name: str, source: str) -> str:
    """``kafka_topic.name`` in a query on kafka_topic is ``name``."""
    prefix = source + "."
    return name[len(prefix):] if name.startswith(prefix) else name


def _literal(tokens: _Tokens) -> Any:
    kind, value = tokens.peek()
    tokens.index += 1
    if kind == "string":
        return value[1:-1]
    if kind == "number":
        return float(value)
    if kind == "keyword" and value in ("true", "false"):
        return value == "true"
    if kind == "punct" and value == "[":
        items = []
        while tokens.peek() != ("punct", "]"):
            if tokens.peek() == (None, None):
                raise _dsl_error(tokens.text, "a list is not closed with ']'")
            items.append(_literal(tokens))
            if tokens.peek() == ("punct", ","):
                tokens.index += 1
        tokens.index += 1
        return items
    if kind == "word":  # an unquoted name, as the grammar's ID allows
        return value
    raise _dsl_error(tokens.text, f"expected a value, found {value or 'the end'}")


def dsl_search(documents: Iterable[Mapping[str, Any]], query: DslQuery, scope: TypeScope, *, limit: Any,
               offset: Any) -> list[Mapping[str, Any]]:
    """The documents a DSL query selects (deleted entities included, as Atlas's DSL does), ordered and cut."""
    if query.source in scope.entity_types:
        types = scope.types_named(query.source)
        in_scope = (lambda d: d["__typeName"] in types)
    elif query.source in scope.classifications:
        types = None
        in_scope = (lambda d: query.source in d["__classificationNames"])
    else:
        raise BadRequest("INVALID_DSL_UNKNOWN_TYPE", query.source)
    if types is not None:
        known = set(SYSTEM_ATTRIBUTES) | {a for t in types for a in scope.attributes.get(t, ())}
        for name in filter_attributes(query.where) | set(query.select) | ({query.order_by} - {None}):
            if name not in known:
                raise BadRequest("INVALID_DSL_UNKNOWN_ATTR_TYPE", name, query.source)
    found = [d for d in documents if in_scope(d) and matches(query.where, d)]
    if query.order_by:
        found = sort_documents(found, query.order_by, "DESCENDING" if query.descending else "ASCENDING")
    if query.limit is not None or query.offset is not None:  # the query's own limit wins over the parameters
        start = query.offset or 0
        return found[start:start + query.limit] if query.limit is not None else found[start:]
    limit, offset = normalized_limits(limit, offset)
    return found[offset:offset + limit]
