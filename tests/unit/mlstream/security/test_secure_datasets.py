"""Team views of a dataset: columns granted, first mask wins, one filter per team, errors per team."""

from __future__ import annotations

import datetime
import json

import pytest

from mlstream.security.directory import Directory
from mlstream.security.expressions import ExpressionError
from mlstream.security.policies import PolicyFile
from mlstream.security.secure_datasets import RecordRefused, ViewError, dataset_of, team_views

DIRECTORY = Directory.parse("users:\n  fay: {groups: [fraud], attributes: {region: EU}}\n"
                            "  fox: {groups: [fraud], attributes: {region: EU}}\n"
                            "  cal: {groups: [churn], attributes: {region: US}}\n"
                            "  cid: {groups: [churn], attributes: {region: APAC}}\n", "d.yaml")
SCHEMA = {"type": "record", "name": "Customer", "namespace": "x", "fields": [
    {"name": "id", "type": "string"}, {"name": "email", "type": "string", "doc": "contact"},
    {"name": "phone", "type": ["null", "string"], "default": None}, {"name": "score", "type": "long"},
    {"name": "born", "type": {"type": "int", "logicalType": "date"}}, {"name": "region", "type": "string"}]}
RECORD = {"id": "1", "email": "fay@example.com", "phone": "555-0142", "score": 987654,
          "born": datetime.date(1990, 7, 15), "region": "EU"}


def policy(name: str, kind: int, columns: list[str] | None = None, **items) -> dict:
    resources = {"database": {"values": ["customers"]}, "table": {"values": ["raw"]}}
    if columns is not None:
        resources["column"] = {"values": columns}
    return {"name": name, "policyType": kind, "resources": resources, **items}


def select(team: str, columns: list[str] | None = None) -> dict:
    return policy(f"{team} select {columns}", 0, columns,
                  policyItems=[{"groups": [team], "accesses": [{"type": "select"}]}])


def masking(team: str, column: str, mask_type: str, name: str | None = None, **extra) -> dict:
    return policy(name or f"{team} {column}", 1, [column], **extra,
                  dataMaskPolicyItems=[{"groups": [team], "dataMaskInfo": {"dataMaskType": mask_type}}])


def views(*policies: dict) -> dict:
    parsed = PolicyFile.parse(json.dumps({"policyVersion": 9, "policies": list(policies)}), "h.json", DIRECTORY)
    return team_views(parsed, DIRECTORY, "customers.raw", SCHEMA, 3)


def test_a_dataset_is_its_topic_split_at_the_last_dot():
    assert dataset_of("customers.raw") == ("customers", "raw") and dataset_of("a.b.c") == ("a.b", "c")


def test_only_teams_granted_select_get_a_view_with_the_columns_granted():
    found = views(select("fraud", ["id", "email", "sc*"]), masking("churn", "email", "MASK"))
    assert list(found) == ["fraud"] and found["fraud"].columns == ("id", "email", "score")
    assert found["fraud"].apply(RECORD) == {"id": "1", "email": "fay@example.com", "score": 987654}
    assert views(select("fraud"))["fraud"].columns == tuple(f["name"] for f in SCHEMA["fields"])


def test_the_first_mask_policy_wins_and_override_priority_comes_first():
    view = views(select("fraud"), masking("fraud", "email", "MASK_NULL", "first"),
                 masking("fraud", "email", "MASK", "second"))["fraud"]
    assert view.apply(RECORD)["email"] is None and view.masks["email"].policy == "first"
    view = views(select("fraud"), masking("fraud", "email", "MASK_NULL", "first"),
                 masking("fraud", "email", "MASK", "override", policyPriority=1))["fraud"]
    assert view.apply(RECORD)["email"] == "xxx@xxxxxxx.xxx"


def test_the_schema_says_what_is_masked_and_changes_types_where_it_must():
    view = views(select("fraud"), masking("fraud", "score", "MASK_HASH"), masking("fraud", "email", "MASK"),
                 masking("fraud", "born", "MASK_DATE_SHOW_YEAR"))["fraud"]
    fields = {f["name"]: f for f in view.schema["fields"]}
    assert fields["score"]["type"] == ["null", "string"] and fields["score"]["default"] is None
    assert fields["email"]["doc"] == "contact [masked: MASK by policy 'fraud email']"
    assert fields["born"]["type"] == ["null", {"type": "int", "logicalType": "date"}]
    assert view.schema["name"] == "Customer_secure_fraud" and view.schema["namespace"] == "x.secure"
    assert view.schema["doc"] == ("The secure dataset of customers.raw for team fraud, by security.hive@v3 "
                                  "(policyVersion 9): masked score (MASK_HASH), email (MASK), born "
                                  "(MASK_DATE_SHOW_YEAR); every row.")
    masked = view.apply(RECORD)
    assert masked["born"] == datetime.date(1990, 1, 1) and len(masked["score"]) == 64


def test_a_record_missing_a_masked_field_is_refused_never_passed_on():
    view = views(select("fraud"), masking("fraud", "phone", "MASK_SHOW_LAST_4"))["fraud"]
    with pytest.raises(RecordRefused, match="phone: masked for team fraud by policy 'fraud phone' but missing"):
        view.apply({k: v for k, v in RECORD.items() if k != "phone"})


def row_filter(team: str, expression: str) -> dict:
    return policy(f"{team} rows", 2, rowFilterPolicyItems=[{"groups": [team], "rowFilterInfo": {
        "filterExpr": expression}}])


def test_the_row_filter_resolves_the_team_s_attributes():
    view = views(select("fraud"), row_filter("fraud", "region = ${{USER.region}} AND score > 5"))["fraud"]
    assert view.user == {"region": "EU"} and view.apply(RECORD) is not None
    assert view.apply(dict(RECORD, region="US")) is None
    assert "rows kept where region = ${{USER.region}} AND score > 5" in view.schema["doc"]


@pytest.mark.parametrize("policies, message", [
    ((select("fraud", ["id", "ssn"]),), "policy \"fraud select ['id', 'ssn']\" names column 'ssn', which "
                                        "customers.raw does not have"),
    ((select("fraud"), masking("fraud", "ssn", "MASK")), "policy 'fraud ssn' names column 'ssn'"),
    ((select("fraud"), row_filter("fraud", "postcode = 'x'")), "policy 'fraud rows' names column 'postcode'"),
    ((select("churn"), row_filter("churn", "region = ${{USER.region}}")),
     "${{USER.region}}: the members of churn (cal, cid) must share one value of 'region'"),
])
def test_a_policy_that_cannot_be_applied_is_an_error_of_that_team_alone(policies, message):
    team = policies[0]["policyItems"][0]["groups"][0]
    other = "churn" if team == "fraud" else "fraud"
    found = views(*policies, select(other))
    assert isinstance(found[team], ViewError) and message in str(found[team]), found[team]
    assert not isinstance(found[other], ViewError)
    assert str(found[team]).startswith(f"team {team}, customers.raw, security.hive@v3 (policyVersion 9): ")


def test_a_filter_that_fails_on_a_record_raises_for_the_processor_to_stop_the_team():
    view = views(select("fraud"), row_filter("fraud", "score > 'high'"))["fraud"]
    with pytest.raises(ExpressionError, match="a number with a text"):
        view.apply(RECORD)
