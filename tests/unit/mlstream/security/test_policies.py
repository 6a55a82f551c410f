"""Ranger policy files: both file shapes read, every problem named by file, line and key."""

from __future__ import annotations

import json

import pytest

from mlstream.security.directory import Directory, SecurityConfigError
from mlstream.security.policies import DATA_MASK, ROW_FILTER, PolicyFile
from mlstream.security import EXAMPLES

DIRECTORY = Directory.parse((EXAMPLES / "directory.yaml").read_text(), "directory.yaml")


def problems_of(document: dict, directory: Directory | None = DIRECTORY) -> str:
    with pytest.raises(SecurityConfigError) as caught:
        PolicyFile.parse(json.dumps(document, indent=2), "p.json", directory)
    return str(caught.value)


def hive_mask(mask_type: str, **info) -> dict:
    return {"policies": [{"name": "m", "policyType": 1, "resources": {
        "database": {"values": ["customers"]}, "table": {"values": ["raw"]}, "column": {"values": ["email"]}},
        "dataMaskPolicyItems": [{"groups": ["fraud"], "accesses": [{"type": "select"}],
                                 "dataMaskInfo": {"dataMaskType": mask_type, **info}}]}]}


def test_the_examples_parse_with_ranger_model_objects():
    kafka = PolicyFile.parse((EXAMPLES / "kafka-policies.json").read_text(), "kafka-policies.json", DIRECTORY)
    assert (kafka.service_type, kafka.service_name, kafka.version) == ("kafka", "mlstream_kafka", 1)
    assert type(kafka.policies[0]).__name__ == "RangerPolicy"
    assert type(kafka.policies[0].policyItems[0]).__name__ == "RangerPolicyItem"
    assert kafka.policies[0].resources["topic"].isExcludes is False  # Ranger's default, from its model


def test_ranger_admin_export_shape_is_read_too():
    export = {"metaDataInfo": {"Host name": "ranger", "Exported by": "admin"},
              "policies": [{"service": "cm_kafka", "serviceType": "kafka", "name": "x", "id": 7, "isEnabled": False,
                            "resources": {"topic": {"values": ["a"], "isExcludes": False, "isRecursive": False}},
                            "policyItems": [{"users": ["fraud-fay"], "accesses": [{"type": "consume",
                                                                                  "isAllowed": True}]}]}]}
    policies = PolicyFile.parse(json.dumps(export), "export.json", DIRECTORY)
    assert policies.version is None and policies.enabled() == []


def test_a_mask_policy_and_a_row_filter_policy_are_hive_policies():
    masks = PolicyFile.parse(json.dumps(hive_mask("MASK_SHOW_LAST_4")), "h.json", DIRECTORY)
    assert masks.service_type == "hive" and masks.policies[0].policyType == DATA_MASK
    assert masks.policies[0].dataMaskPolicyItems[0].dataMaskInfo.dataMaskType == "MASK_SHOW_LAST_4"
    rows = {"policies": [{"name": "r", "policyType": 2, "resources": {"database": {"values": ["customers"]},
                                                                      "table": {"values": ["raw"]}},
                          "rowFilterPolicyItems": [{"groups": ["fraud"], "rowFilterInfo": {"filterExpr": "consent"}}]}]}
    assert PolicyFile.parse(json.dumps(rows), "h.json", DIRECTORY).policies[0].policyType == ROW_FILTER


def test_every_problem_is_named_by_file_line_and_key():
    document = {"serviceName": "k", "policies": [
        {"name": "a", "resources": {"topic": {"values": ["t"]}},
         "policyItems": [{"users": ["nobody"], "groups": ["no-team"], "accesses": [{"type": "read"}]}]},
        {"name": "a", "resources": {"topic": {"values": ["t"]}}, "policyItems": [{"accesses": [{"type": "consume"}]}]}]}
    lines = problems_of(document).splitlines()[1:]  # in file order
    assert lines[0].startswith("  p.json:16: policies[0].policyItems[0].users[0]: user 'nobody' is not in the dir")
    assert lines[1].startswith("  p.json:19: policies[0].policyItems[0].groups[0]: group 'no-team' has no member in")
    assert lines[2].startswith("  p.json:23: policies[0].policyItems[0].accesses[0].type: 'read' is not an access of "
                               "Ranger's kafka service (publish, consume,")
    assert lines[3] == "  p.json:30: policies[1].name: policy name 'a' is already used by policies[0] (Ranger " \
        "requires unique names)"
    assert lines[4] == "  p.json:39: policies[1].policyItems[0]: names no users, groups or roles: it applies to no one"


@pytest.mark.parametrize("document, expected", [
    ({"policies": [{"name": "x", "resources": {"topic": {"values": ["t"]}}}], "policyVersoin": 2},
     "p.json:14: policyVersoin: unknown key"),
    ({"policies": [{"name": "x", "resources": {"topic": {"values": []}}}]},
     "a resource needs values: a non-empty list"),
    ({"policies": [{"name": "x", "policyType": 3, "resources": {"topic": {"values": ["t"]}}}]},
     "policyType is 0 (access), 1 (data mask) or 2 (row filter) (got 3)"),
    ({"policies": [{"name": "x", "resources": {"path": {"values": ["/"]}}}]},
     "resources ['path'] belong to no service mlstream knows"),
    ({"policies": [{"name": "x", "resources": {"topic": {"values": ["t"]}}},
                   {"name": "y", "resources": {"database": {"values": ["d"]}}}]},
     "one file is for one service, this one mixes kafka"),
    ({"policies": [{"name": "x", "resources": {"topic": {"values": ["t"]}, "consumergroup": {"values": ["g"]}}}]},
     "a kafka policy names one resource type, this one 2"),
    ({"policies": [{"name": "x", "policyType": 1, "resources": {"topic": {"values": ["t"]}}}]},
     "Ranger's kafka service has access policies only (0)"),
    (hive_mask("MASK_EMAIL"), "'MASK_EMAIL' is not one of Ranger's mask types (MASK, MASK_SHOW_LAST_4"),
    (hive_mask("CUSTOM"), "a CUSTOM mask needs a valueExpr"),
    ({"policies": [{"name": "x", "policyType": 2, "resources": {
        "database": {"values": ["d"]}, "table": {"values": ["t"]}, "column": {"values": ["c"]}},
                    "rowFilterPolicyItems": [{"groups": ["fraud"], "rowFilterInfo": {"filterExpr": "a = 1"}}]}]},
     "a row-filter policy (policyType 2) names a database and a table, no column"),
    ({"policies": [{"name": "x", "resources": {"database": {"values": ["d"]}, "table": {"values": ["t"]}},
                    "dataMaskPolicyItems": [{"groups": ["fraud"], "dataMaskInfo": {"dataMaskType": "MASK"}}]}]},
     "a policyType 0 policy has no dataMaskPolicyItems"),
])
def test_a_bad_policy_file_is_refused_with_what_to_fix(document, expected):
    assert expected in problems_of(document)


def test_bad_json_and_an_empty_file_say_where():
    with pytest.raises(SecurityConfigError, match=r"p.json:3: not valid YAML"):
        PolicyFile.parse('{"policies": [\n  {"name": "x",\n  ]}', "p.json")
    with pytest.raises(SecurityConfigError, match="p.json: empty"):
        PolicyFile.parse("", "p.json")


def test_the_file_must_be_for_the_config_s_service():
    with pytest.raises(SecurityConfigError, match="its policies are for a kafka service, but this config holds hive"):
        PolicyFile.parse((EXAMPLES / "kafka-policies.json").read_text(), "k.json", DIRECTORY, "hive")


def row_filter(expression: str, **item) -> dict:
    return {"policies": [{"name": "r", "policyType": 2, "resources": {"database": {"values": ["customers"]},
                                                                      "table": {"values": ["raw"]}},
                          "rowFilterPolicyItems": [{"groups": ["fraud", "churn"], **item,
                                                    "rowFilterInfo": {"filterExpr": expression}}]}]}


def test_a_filter_or_custom_mask_that_does_not_parse_is_refused_where_it_is():
    text = problems_of(row_filter("region = 'EU'; DROP TABLE raw"))
    assert "p.json:25: policies[0].rowFilterPolicyItems[0].rowFilterInfo.filterExpr: \"region = 'EU'; DROP TABLE " \
           "raw\": at character 14: ';' is not part of the expressions" in text
    assert "is not one mlstream evaluates" in problems_of(hive_mask("CUSTOM", valueExpr="eval({col})"))


def test_every_user_a_filter_applies_to_needs_the_attributes_it_uses():
    assert PolicyFile.parse(json.dumps(row_filter("region = ${{USER.region}}")), "p.json", DIRECTORY)
    text = problems_of(row_filter("region = ${{USER.region}}", users=["owner-olga"]))
    assert "${{USER.region}}: user 'owner-olga' has no attribute 'region' in the directory" in text
