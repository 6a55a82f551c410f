"""`mlstream security apply` on the real secured broker: Ranger-format Kafka policies become SCRAM users and ACLs.

One test walks a policy file through its versions on one set of topics, users and a config
store of its own (subjects under a unique prefix in the secured profile's registry): team
principals read their own topic and are refused on the others, a second apply changes
nothing, a grant removed is an ACL removed, and a policy ACLs cannot express changes nothing.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import uuid

import pytest
from confluent_kafka import KafkaError
from confluent_kafka.admin import NewTopic

from mlstream.config_store import open_config_store
from mlstream.kafka import clients
from mlstream.security import configs, kafka_acls, passwords
from tests.conftest import isolated_settings
from tools import security_admin
from tools.commands import security
from tools.local_services import secured
from tools.local_services.state import state_paths

pytestmark = pytest.mark.integration


def as_user(settings, user: str, password: str):
    security_keys = dict(settings.kafka_security) | {"sasl.username": user, "sasl.password": password}
    return dataclasses.replace(settings, kafka_security=tuple(security_keys.items()))


def first_read(settings, topic: str, group: str, timeout_s: float = 30) -> bytes | KafkaError:
    """The first message's value of ``topic``, or the error the broker answers with."""
    consumer = clients.consumer(settings, **{"group.id": group, "auto.offset.reset": "earliest"})
    try:
        consumer.subscribe([topic])
        for _ in range(int(timeout_s)):
            message = consumer.poll(1.0)
            if message is None:
                continue
            if message.error():
                if message.error().code() == KafkaError._PARTITION_EOF:
                    continue
                return message.error()
            return message.value()
        raise AssertionError(f"neither a message nor an error from {topic} in {timeout_s} s")
    finally:
        consumer.close()


def policy_file(run: str, topics: dict[str, str], grants: dict[str, str]) -> str:
    """A plugin-format kafka policy file: the owners write and read raw, each team reads its ``grants`` topic."""
    policies = [{"name": "raw: owners", "resources": {"topic": {"values": [topics["raw"]]}},
                 "policyItems": [{"groups": ["owners"], "accesses": [{"type": "publish"}, {"type": "consume"}]}]},
                {"name": "groups", "resources": {"consumergroup": {"values": [f"ds-{run}-*"]}},
                 "policyItems": [{"groups": ["owners", "fraud", "churn"], "accesses": [{"type": "consume"}]}]}]
    policies += [{"name": f"{team} reads", "resources": {"topic": {"values": [topics[topic]]}},
                  "policyItems": [{"groups": [team], "accesses": [{"type": "consume"}]}]}
                 for team, topic in grants.items()]
    return json.dumps({"serviceName": "test_kafka", "policyVersion": 1, "policies": policies}, indent=2)


def apply(settings, dry_run: bool = False) -> kafka_acls.Plan:
    security.cmd_security(argparse.Namespace(folder=None, action="apply", dry_run=dry_run, json=False), settings)
    store = open_config_store(settings)
    return security_admin.make_plan(settings, store, clients.admin(security_admin.admin_settings(settings)))[0]


def test_policies_become_users_and_acls_that_the_broker_enforces(secured_services, tmp_path, capsys):
    settings = isolated_settings(secured_services, tmp_path / "state")
    run = settings.app_id.removeprefix("test-")
    topics = {"raw": f"{settings.topics.prefix}customers", "fraud": f"{settings.topics.prefix}customers.secure.fraud",
              "churn": f"{settings.topics.prefix}customers.secure.churn"}
    users = {"owners": f"owner-{run}", "fraud": f"fraud-{run}", "churn": f"churn-{run}"}
    admin_settings = security_admin.admin_settings(settings)
    admin = clients.admin(admin_settings)
    for future in admin.create_topics([NewTopic(t, 1, 1) for t in topics.values()]).values():
        future.result(timeout=30)
    producer = clients.producer(admin_settings)
    for name, topic in topics.items():
        producer.produce(topic, value=f"a {name} record".encode())
    assert producer.flush(30) == 0

    store = open_config_store(settings)
    directory = "users:\n" + "".join(f"  {user}: {{groups: [{team}]}}\n" for team, user in users.items())
    for name, text in ((configs.DIRECTORY, directory),
                       ("security.kafka", policy_file(run, topics, {"fraud": "fraud", "churn": "churn"}))):
        configs.check(store, name, text, name)
        store.put(name, text)

    left = apply(settings)
    printed = capsys.readouterr().out
    assert f"+ user {users['fraud']}" in printed and f"+ ALLOW User:{users['fraud']} READ TOPIC LITERAL " \
        f"{topics['fraud']} from *" in printed and "applied" in printed
    assert left.changes == 0 and len(left.keep) == 7  # owners: WRITE+READ raw; 3 groups; 2 team topics

    folder = secured.secrets_dir(state_paths(settings))
    def principal(team):
        return as_user(settings, users[team], passwords.stored_password(folder, users[team]))

    assert first_read(principal("fraud"), topics["fraud"], f"ds-{run}-fraud") == b"a fraud record"
    for topic in ("raw", "churn"):
        refused = first_read(principal("fraud"), topics[topic], f"ds-{run}-fraud")
        assert isinstance(refused, KafkaError) and refused.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, refused
    assert first_read(principal("churn"), topics["churn"], f"ds-{run}-churn") == b"a churn record"
    assert first_read(principal("owners"), topics["raw"], f"ds-{run}-owner") == b"a raw record"

    # Applied again: nothing to do.
    again = apply(settings)
    assert "0 change(s)" in capsys.readouterr().out and again.changes == 0

    # The churn grant removed: its ACL goes, and churn is refused where it read before.
    store.put("security.kafka", policy_file(run, topics, {"fraud": "fraud"}))
    apply(settings)
    assert f"- ALLOW User:{users['churn']} READ TOPIC LITERAL {topics['churn']} from *" in capsys.readouterr().out
    acls = kafka_acls.current_acls(admin, [f"User:{users['churn']}"])
    assert [a for a in acls if a.resource_type == "TOPIC"] == []
    refused = first_read(principal("churn"), topics["churn"], f"ds-{run}-churn")
    assert isinstance(refused, KafkaError) and refused.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, refused

    # What ACLs cannot express is refused whole, and nothing changes on the broker.
    excluding = json.loads(policy_file(run, topics, {"fraud": "fraud", "churn": "churn"}))
    excluding["policies"][3]["resources"]["topic"]["isExcludes"] = True
    store.put("security.kafka", json.dumps(excluding, indent=2))
    before = kafka_acls.current_acls(admin, [f"User:{u}" for u in users.values()])
    with pytest.raises(kafka_acls.PoliciesRefused, match=r"security.kafka@v3:\d+: policies\[3\].resources.topic"
                       r".isExcludes: policy 'churn reads': isExcludes grants every topic except"):
        apply(settings)
    assert kafka_acls.current_acls(admin, [f"User:{u}" for u in users.values()]) == before
