"""Atlas search over the embedded graph: the DSL subset, FilterCriteria operators, basic search, full text."""

from __future__ import annotations

import pytest

from apps.lineage_service.errors import BadRequest
from apps.lineage_service.graph import LineageGraph
from apps.lineage_service.search import TypeScope, basic_search, dsl_search, matches, parse_dsl
from mlstream.lineage import entities as e
from mlstream.lineage.hook import entity_create_v2, entity_delete_v2


@pytest.mark.parametrize("text, source, where", [
    ("kafka_topic", "kafka_topic", None),
    ("from kafka_topic", "kafka_topic", None),
    ("kafka_topic where name = 'a'", "kafka_topic", {"attributeName": "name", "operator": "EQ", "attributeValue": "a"}),
    ('kafka_topic name != "a"', "kafka_topic", {"attributeName": "name", "operator": "NEQ", "attributeValue": "a"}),
    ("kafka_topic where kafka_topic.partitionCount >= 3", "kafka_topic",
     {"attributeName": "partitionCount", "operator": "GTE", "attributeValue": 3.0}),
    ("kafka_topic isa PII", "kafka_topic",
     {"attributeName": "__classificationNames", "operator": "EQ", "attributeValue": "PII"}),
    ("kafka_topic has owner", "kafka_topic", {"attributeName": "owner", "operator": "NOT_NULL"}),
    ("kafka_topic where name like 'mlstream.*'", "kafka_topic",
     {"attributeName": "name", "operator": "DSL_LIKE", "attributeValue": "mlstream.*"}),
    ("kafka_topic where name = ['a', 'b']", "kafka_topic",
     {"attributeName": "name", "operator": "IN", "attributeValue": ["a", "b"]}),
    ("kafka_topic where a = 1 or b = 2 and c = true", "kafka_topic", {"condition": "OR", "criterion": [
        {"attributeName": "a", "operator": "EQ", "attributeValue": 1.0},
        {"condition": "AND", "criterion": [{"attributeName": "b", "operator": "EQ", "attributeValue": 2.0},
                                           {"attributeName": "c", "operator": "EQ", "attributeValue": True}]}]}),
    ("kafka_topic where (a = 1 or b = 2) and c = x", "kafka_topic", {"condition": "AND", "criterion": [
        {"condition": "OR", "criterion": [{"attributeName": "a", "operator": "EQ", "attributeValue": 1.0},
                                          {"attributeName": "b", "operator": "EQ", "attributeValue": 2.0}]},
        {"attributeName": "c", "operator": "EQ", "attributeValue": "x"}]}),
])
def test_dsl_conditions_become_filter_criteria(text, source, where):
    query = parse_dsl(text)
    assert (query.source, query.where) == (source, where)


def test_dsl_select_order_limit_offset():
    query = parse_dsl("ml_model_build where version > 1 select name, version orderby version desc limit 2 offset 1")
    assert (query.select, query.order_by, query.descending, query.limit, query.offset) == \
        (("name", "version"), "version", True, 2, 1)


@pytest.mark.parametrize("text, reason", [
    ("kafka_topic where", "expected an attribute name"),
    ("kafka_topic where name ==", "expected a value"),
    ("kafka_topic where name 'x'", "expected an operator"),
    ("kafka_topic where (name = 'x'", r"expected '\)'"),
    ("kafka_topic groupby(name)", "groupby is not supported"),
    ("kafka_topic select count()", "aggregations are not supported"),
    ("kafka_topic limit x", "a number after limit"),
    ("kafka_topic where name = 'x' nonsense", "unexpected"),
    ("kafka_topic where name = #", "unexpected text"),
])
def test_a_dsl_query_outside_the_subset_is_atlas_s_invalid_dsl_query(text, reason):
    with pytest.raises(BadRequest, match=reason) as raised:
        parse_dsl(text)
    assert raised.value.code == "ATLAS-400-00-059" and raised.value.status == 400


DOC = {"__typeName": "kafka_topic", "__state": "ACTIVE", "name": "mlstream.Records", "partitionCount": 3,
       "createTime": 1_700_000_000_000, "retention": None, "tags": ["a", "b"], "enabled": True}


@pytest.mark.parametrize("attribute, operator, value, expected", [
    ("name", "=", "mlstream.Records", True), ("name", "eq", "mlstream.records", False),
    ("name", "!=", "x", True), ("partitionCount", "<", "4", True), ("partitionCount", "gte", "3", True),
    ("partitionCount", ">", "3", False), ("partitionCount", "LTE", "2", False), ("partitionCount", "=", "3", True),
    ("name", "like", "*rec*", True), ("name", "LIKE", "rec", True), ("name", "like", "x*", False),
    ("name", "startsWith", "MLSTREAM", True), ("name", "endsWith", "records", True),
    ("name", "contains", "am.re", True), ("name", "not_contains", "am.re", False),
    ("name", "in", "a,mlstream.Records", True), ("name", "IN", "[a, b]", False),
    ("tags", "=", "b", True), ("tags", "containsAny", "x,b", True), ("tags", "containsAll", "a,x", False),
    ("tags", "containsAll", "b,a", True), ("retention", "isNull", None, True), ("retention", "notNull", None, False),
    ("name", "notEmpty", None, True), ("missing", "isNull", None, True), ("missing", "=", "x", False),
    ("missing", "!=", "x", True), ("enabled", "=", "true", True), ("enabled", "=", "false", False),
    ("createTime", "timerange", "1699999999999,1700000000001", True), ("createTime", ">", "2023-11-14T00:00:00Z", True),
    ("createTime", "timerange", "LAST_7_DAYS", False),
])
def test_filter_operators_by_every_symbol_atlas_takes(attribute, operator, value, expected):
    assert matches({"attributeName": attribute, "operator": operator, "attributeValue": value}, DOC) is expected


def test_nested_criteria_and_bad_filters():
    both = {"condition": "AND", "criterion": [
        {"attributeName": "name", "operator": "contains", "attributeValue": "rec"},
        {"condition": "OR", "criterion": [{"attributeName": "partitionCount", "operator": "=", "attributeValue": "9"},
                                          {"attributeName": "enabled", "operator": "=", "attributeValue": "true"}]}]}
    assert matches(both, DOC) and matches(None, DOC) and matches({}, DOC)
    with pytest.raises(BadRequest, match="ATLAS-400-00-103|Invalid operator"):
        matches({"attributeName": "name", "operator": "~", "attributeValue": "x"}, DOC)
    with pytest.raises(BadRequest, match="Condition"):
        matches({"criterion": [{"attributeName": "name", "operator": "=", "attributeValue": "x"}]}, DOC)
    with pytest.raises(BadRequest, match="value is missing"):
        matches({"attributeName": "name", "operator": "=", "attributeValue": " "}, DOC)


@pytest.fixture
def graph() -> LineageGraph:
    """records -> scorer -> predictions; features -> train -> build 1 and 2; predictions deleted later."""
    graph = LineageGraph(":memory:")
    graph.add_typedefs({"classificationDefs": [{"name": "PII", "attributeDefs": []}]})
    g = e.negative_guids()
    records = e.kafka_topic("mlstream.records", bootstrap_servers="b", guid=next(g), partition_count=3)
    predictions = e.kafka_topic("mlstream.predictions", bootstrap_servers="b", guid=next(g), partition_count=1)
    records["classifications"] = [{"typeName": "PII"}]
    scorer = e.stream_process("scorer", [records], [predictions], model_name="churn", model_version="2",
                              guid=next(g), description="scores every record with the churn model")
    assert "rejected" not in graph.apply(entity_create_v2([scorer], [records, predictions], user="u"))
    for version in (1, 2):
        g = e.negative_guids()
        build = e.ml_model_build(f"crn:build/{version}", "churn", version, guid=next(g))
        train = e.ml_train_build_process(build, [e.object_id("kafka_topic", "mlstream.records@primary")], user="u",
                                         guid=next(g))
        assert "rejected" not in graph.apply(entity_create_v2([train], [build], user="u"))
    return graph


def scope_of(graph: LineageGraph) -> TypeScope:
    types = graph.types
    return TypeScope({n: types.supertypes(n) for n in types.entity_defs}, list(types.classification_defs),
                     {n: list(types.attribute_defs(n)) for n in types.entity_defs})


def names(found) -> list[str]:
    return [d["qualifiedName"] for d in found]


def test_basic_search_types_subtypes_classification_text_filters_and_pages(graph):
    docs, scope = graph.documents(), scope_of(graph)
    page, every = basic_search(docs, {"typeName": "kafka_topic"}, scope)
    assert names(page) == ["mlstream.predictions@primary", "mlstream.records@primary"] and len(every) == 2
    page, _ = basic_search(docs, {"typeName": "Process", "sortBy": "name", "sortOrder": "DESCENDING"}, scope)
    # by name, descending: "train churn build 2", "train churn build 1", "scorer"
    assert names(page) == ["crn:build/2/train", "crn:build/1/train", "scorer@primary"]
    page, _ = basic_search(docs, {"typeName": "Process", "includeSubTypes": False}, scope)
    assert page == []
    assert names(basic_search(docs, {"classification": "PII"}, scope)[0]) == ["mlstream.records@primary"]
    assert len(basic_search(docs, {"typeName": "kafka_topic", "classification": "_NOT_CLASSIFIED"}, scope)[0]) == 1
    assert names(basic_search(docs, {"query": "churn model"}, scope)[0]) == ["scorer@primary"]
    filters = {"condition": "AND", "criterion": [
        {"attributeName": "partitionCount", "operator": "gt", "attributeValue": "1"},
        {"attributeName": "__state", "operator": "=", "attributeValue": "ACTIVE"}]}
    assert names(basic_search(docs, {"typeName": "DataSet", "entityFilters": filters}, scope)[0]) == \
        ["mlstream.records@primary"]
    page, every = basic_search(docs, {"typeName": "_ALL_ENTITY_TYPES", "limit": 2, "offset": 1,
                                      "sortBy": "qualifiedName"}, scope)
    assert names(page) == ["crn:build/1/train", "crn:build/2"] and len(every) == 7


def test_excluded_deleted_entities_and_refused_searches(graph):
    graph.apply(entity_delete_v2([e.object_id("kafka_topic", "mlstream.predictions@primary")], user="u"))
    docs, scope = graph.documents(), scope_of(graph)
    assert len(basic_search(docs, {"typeName": "kafka_topic"}, scope)[0]) == 2
    assert names(basic_search(docs, {"typeName": "kafka_topic", "excludeDeletedEntities": True}, scope)[0]) == \
        ["mlstream.records@primary"]
    for params, code in [({}, "ATLAS-400-00-047"), ({"typeName": "nope"}, "ATLAS-400-00-00A"),
                         ({"classification": "nope"}, "ATLAS-400-00-046"),
                         ({"entityFilters": {"attributeName": "name", "operator": "=", "attributeValue": "x"},
                           "query": "x"}, "ATLAS-400-00-029"),
                         ({"typeName": "kafka_topic", "sortBy": "nope"}, "ATLAS-400-00-023"),
                         ({"typeName": "kafka_topic", "limit": -1}, "ATLAS-400-00-029"),
                         ({"termName": "nope@glossary"}, "ATLAS-400-00-06E")]:
        with pytest.raises(BadRequest) as raised:
            basic_search(docs, params, scope)
        assert raised.value.code == code, params


def test_dsl_search_deleted_included_its_own_limit_wins_and_unknown_names_refused(graph):
    graph.apply(entity_delete_v2([e.object_id("kafka_topic", "mlstream.predictions@primary")], user="u"))
    docs, scope = graph.documents(), scope_of(graph)

    def dsl(text, limit=0, offset=0):
        return names(dsl_search(docs, parse_dsl(text), scope, limit=limit, offset=offset))

    assert dsl("kafka_topic") == ["mlstream.predictions@primary", "mlstream.records@primary"]
    assert dsl("kafka_topic where __state = 'ACTIVE'") == ["mlstream.records@primary"]
    assert dsl("kafka_topic where name like 'mlstream.rec*'") == ["mlstream.records@primary"]
    assert dsl("kafka_topic where name like 'rec*'") == []  # the whole value, unlike basic search's LIKE
    assert dsl("PII") == ["mlstream.records@primary"] == dsl("DataSet isa PII")
    assert dsl("ml_model_build where version >= 1 orderby version desc limit 1") == ["crn:build/2"]
    assert dsl("ml_model_build orderby version", limit=1, offset=1) == ["crn:build/2"]
    assert dsl("mlstream_stream_process where modelName = 'churn' and modelVersion = 2") == ["scorer@primary"]
    with pytest.raises(BadRequest, match="ATLAS-400-00-05B|nope type not found"):
        dsl("nope")
    with pytest.raises(BadRequest) as raised:
        dsl("kafka_topic where colour = 'red'")
    assert raised.value.code == "ATLAS-400-00-05D"
