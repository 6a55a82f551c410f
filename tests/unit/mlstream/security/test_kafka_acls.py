"""The Ranger-to-ACL mapping: accesses, resources, wildcards, deny items, teams; refusals; the plan."""

from __future__ import annotations

import json

import pytest

from mlstream.security.directory import Directory
from mlstream.security.kafka_acls import Acl, PoliciesRefused, apply, plan, policy_acls
from mlstream.security.policies import PolicyFile

DIRECTORY = Directory.parse("users:\n  ann: {groups: [fraud]}\n  bob: {groups: [fraud, churn]}\n  cy: {}\n", "d.yaml")


def acls_of(*policies: dict, directory: Directory = DIRECTORY) -> tuple[list[str], list[str]]:
    parsed = PolicyFile.parse(json.dumps({"policies": list(policies)}, indent=2), "k.json", directory)
    acls, refusals = policy_acls(parsed, directory)
    return [str(a) for a in acls], [str(r) for r in refusals]


def policy(resource: str, values: list[str], *items: dict, deny: tuple[dict, ...] = (), **extra) -> dict:
    return {"name": f"p-{resource}-{values[0]}", "resources": {resource: {"values": values}},
            "policyItems": list(items), "denyPolicyItems": list(deny), **extra}


def item(*accesses: str, users=(), groups=(), **extra) -> dict:
    return {"users": list(users), "groups": list(groups), "accesses": [{"type": a} for a in accesses], **extra}


@pytest.mark.parametrize("access, operation", [
    ("consume", "READ"), ("publish", "WRITE"), ("configure", "ALTER"), ("alter", "ALTER"), ("describe", "DESCRIBE"),
    ("create", "CREATE"), ("delete", "DELETE"), ("describe_configs", "DESCRIBE_CONFIGS"),
    ("alter_configs", "ALTER_CONFIGS"), ("kafka_admin", "ALL")])
def test_each_ranger_access_is_its_kafka_operation(access, operation):
    assert acls_of(policy("topic", ["t"], item(access, users=["cy"]))) == \
        ([f"ALLOW User:cy {operation} TOPIC LITERAL t from *"], [])


@pytest.mark.parametrize("resource, value, expected", [
    ("topic", "t", "TOPIC LITERAL t"), ("topic", "raw.*", "TOPIC PREFIXED raw."), ("topic", "*", "TOPIC LITERAL *"),
    ("consumergroup", "ds-*", "GROUP PREFIXED ds-"), ("transactionalid", "tx", "TRANSACTIONAL_ID LITERAL tx"),
    ("cluster", "*", "BROKER LITERAL kafka-cluster")])
def test_resources_and_wildcards(resource, value, expected):
    assert acls_of(policy(resource, [value], item("describe", users=["cy"])))[0] == \
        [f"ALLOW User:cy DESCRIBE {expected} from *"]


def test_teams_are_expanded_into_users_and_deny_items_are_deny_acls():
    acls, refusals = acls_of(policy("topic", ["t"], item("consume", groups=["fraud"]),
                                    deny=(item("consume", users=["bob"]),)))
    assert refusals == [] and acls == ["ALLOW User:ann READ TOPIC LITERAL t from *",
                                       "ALLOW User:bob READ TOPIC LITERAL t from *",
                                       "DENY User:bob READ TOPIC LITERAL t from *"]
    assert acls_of(policy("topic", ["t"], item("consume", groups=["public"])))[0] == [
        f"ALLOW User:{u} READ TOPIC LITERAL t from *" for u in ("ann", "bob", "cy")]


def test_an_ip_range_of_addresses_is_one_acl_per_host_and_an_access_not_allowed_is_none():
    addresses = {"conditions": [{"type": "ip-range", "values": ["10.0.0.1", "10.0.0.2"]}]}
    assert acls_of(policy("topic", ["t"], item("consume", users=["cy"], **addresses)))[0] == [
        "ALLOW User:cy READ TOPIC LITERAL t from 10.0.0.1", "ALLOW User:cy READ TOPIC LITERAL t from 10.0.0.2"]
    not_allowed = {"users": ["cy"], "accesses": [{"type": "consume", "isAllowed": False}]}
    assert acls_of(policy("topic", ["t"], not_allowed)) == ([], [])


def test_a_disabled_policy_grants_nothing():
    assert acls_of(policy("topic", ["t"], item("consume", users=["cy"]), isEnabled=False)) == ([], [])


@pytest.mark.parametrize("bad, reason", [
    ({"resources": {"topic": {"values": ["t"], "isExcludes": True}}}, "isExcludes grants every topic except"),
    ({"allowExceptions": [item("consume", users=["ann"])]}, "allowExceptions carve users out of an allow"),
    ({"denyExceptions": [item("consume", users=["ann"])]}, "denyExceptions carve users out of a deny"),
    ({"isDenyAllElse": True}, "isDenyAllElse denies everyone else"),
    ({"validitySchedules": [{"startTime": "2026/01/01 00:00:00"}]}, "validity schedules are times"),
    ({"resources": {"topic": {"values": ["raw.*.pii"]}}}, "value 'raw.*.pii': Kafka ACLs match a literal name"),
    ({"resources": {"delegationtoken": {"values": ["*"]}}}, "'delegationtoken' has no Kafka ACL resource"),
    ({"policyItems": [item("consume", users=["ann"], conditions=[{"type": "ip-range", "values": ["10.0.0.0/8"]}])]},
     "ip-range '10.0.0.0/8': a Kafka ACL's host is one address; CIDR ranges"),
    ({"policyItems": [item("consume", users=["ann"], roles=["analyst"])]}, "roles are not in the directory"),
])
def test_what_acls_cannot_express_is_refused_with_the_reason_and_the_policy_binds_nothing(bad, reason):
    acls, refusals = acls_of(policy("topic", ["t"], item("consume", users=["cy"])) | bad)
    assert acls == [] and len(refusals) == 1 and reason in refusals[0], refusals
    assert refusals[0].startswith("k.json:") and "policy 'p-topic-t'" in refusals[0]


def test_the_plan_creates_what_is_missing_deletes_what_is_no_longer_granted_and_leaves_others_alone():
    policies = PolicyFile.parse(json.dumps({"policies": [policy("topic", ["t"], item("consume", users=["ann"]))]}),
                                "k.json", DIRECTORY)
    granted = Acl("User:ann", "ALLOW", "READ", "TOPIC", "LITERAL", "t")
    stale = Acl("User:gone", "ALLOW", "WRITE", "TOPIC", "LITERAL", "t")  # a user of an older directory version
    foreign = Acl("User:mlstream", "ALLOW", "ALL", "TOPIC", "PREFIXED", "mlstream.")  # not the policies' to own
    planned = plan(policies, DIRECTORY, {"ann", "gone"}, [granted, stale, foreign], {"ann", "bob"})
    assert (planned.users_to_create, planned.create, planned.delete, planned.keep) == (["cy"], [], [stale], [granted])
    assert plan(policies, DIRECTORY, set(), [granted], {"ann", "bob", "cy"}).changes == 0


def test_the_profile_s_own_users_may_not_be_in_the_directory_and_a_refused_plan_changes_nothing():
    planned = plan(None, DIRECTORY, set(), [], set(), reserved_users={"cy", "admin"})
    assert [str(r) for r in planned.refusals] == ["the directory: policy '-': user 'cy' is this profile's own user "
                                                  "(the apps' or the administrator's); its ACLs are not the policies' "
                                                  "to own: give the team another user"]

    class NoAdmin:
        def __getattr__(self, name):
            raise AssertionError(f"a refused plan called the broker ({name})")

    with pytest.raises(PoliciesRefused, match="1 part.* cannot be expressed as Kafka ACLs, so none was applied"):
        apply(NoAdmin(), planned, lambda user: "unused")
