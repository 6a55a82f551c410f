"""Secure datasets per team on the real secured broker: masks, row filters, dead letters, policy changes.

One processor (a real `mlstream security process` worker, as the apps' user) turns a raw
customers topic into a secure topic per team, exactly once (its figures, in /stats/, count
what has committed); each team's principal reads its own with its own SCRAM credentials after
`security apply`. The figures are checked against an independent evaluation of the policies
written out in Python here, and a scan of every secure topic finds none of the raw values.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import random
import time

import pytest
from confluent_kafka import KafkaError
from confluent_kafka.admin import NewTopic
from confluent_kafka.schema_registry import Schema

from apps.secure_datasets.secure_job import MISSING_MASKED_FIELD, POLICY_NOT_APPLIED
from mlstream.config_store import open_config_store
from mlstream.kafka import clients
from mlstream.kafka.reader import read_all
from mlstream.kafka.serde import TopicCodec, value_subject
from mlstream.kafka.topics import init
from mlstream.lineage.hook import HookMessageAssembler
from mlstream.security import configs, masks, passwords
from mlstream.security.secure_datasets import POLICY_HEADER
from tests.conftest import free_port, isolated_settings
from tests.integration.test_security_apply import as_user, first_read
from tools import security_admin
from tools.demo import stop_app
from tools.demo_security import processor_stats, start_processor, wait_for_processor
from tools.commands import security
from tools.local_services import secured
from tools.local_services.state import state_paths

pytestmark = pytest.mark.integration

RECORDS = 300
OLD_RECORDS = 5  # written with the schema before 'phone' existed: fraud masks phone, so they are dead-lettered


def customer_schema(with_phone: bool) -> dict:
    fields = [{"name": "id", "type": "string"}, {"name": "name", "type": "string"}, {"name": "email", "type": "string"},
              *([{"name": "phone", "type": ["null", "string"], "default": None}] if with_phone else []),
              {"name": "birth_date", "type": {"type": "int", "logicalType": "date"}},
              {"name": "region", "type": "string"}, {"name": "consent", "type": "boolean"},
              {"name": "income", "type": "double"}, {"name": "label", "type": "boolean"}]
    return {"type": "record", "name": "Customer", "namespace": "test.customers", "fields": fields}


def customers(n: int, start: int = 0) -> list[dict]:
    rng = random.Random(start)
    return [{"id": f"c{i}", "name": f"{rng.choice(['Ada', 'Bo', 'Cy'])} {rng.choice(['Lee', 'Ng'])}{i}",
             "email": f"user{i}@example.com", "phone": f"+44 20 7946 {1000 + i:04d}",
             "birth_date": datetime.date(1950 + i % 50, 2 + i % 10, 2 + i % 27),  # never 1 January: masks show it
             "region": rng.choice(["EU", "US", "APAC"]), "consent": rng.random() < 0.7,
             "income": round(rng.uniform(1e4, 9e4), 2), "label": rng.random() < 0.3} for i in range(start, start + n)]


def hive_policies(database: str, table: str, fraud_email_mask: str = "MASK_HASH", churn_extra: str | None = None,
                  version: int = 1, churn_filter: str = "region = ${{USER.region}}",
                  fraud_birth_date: dict | None = None) -> str:
    def on(kind: int, name: str, column: list[str] | None, items_key: str, items: list[dict]) -> dict:
        resources = {"database": {"values": [database]}, "table": {"values": [table]}}
        if column is not None:
            resources["column"] = {"values": column}
        return {"name": name, "policyType": kind, "resources": resources, items_key: items}

    def mask(team, mask_type, **info):
        return [{"groups": [team], "accesses": [{"type": "select"}], "dataMaskInfo": {"dataMaskType": mask_type,
                                                                                     **info}}]
    select = [{"type": "select"}]
    policies = [
        on(0, "fraud reads all", ["*"], "policyItems", [{"groups": ["fraud"], "accesses": select}]),
        on(0, "churn reads some", ["id", "email", "birth_date", "region", "consent", "income", "label",
                                   *([churn_extra] if churn_extra else [])],
           "policyItems", [{"groups": ["churn"], "accesses": select}]),
        on(1, "names", ["name"], "dataMaskPolicyItems", mask("fraud", "MASK")),
        on(1, "emails (fraud)", ["email"], "dataMaskPolicyItems", mask("fraud", fraud_email_mask)),
        on(1, "emails (churn)", ["email"], "dataMaskPolicyItems",
           mask("churn", "CUSTOM", valueExpr="concat(substr({col}, 1, 1), '***')")),
        on(1, "phones", ["phone"], "dataMaskPolicyItems", mask("fraud", "MASK_SHOW_LAST_4")),
        on(1, "birth dates", ["birth_date"], "dataMaskPolicyItems",
           [*mask("fraud", **(fraud_birth_date or {"mask_type": "MASK_DATE_SHOW_YEAR"})),
            *mask("churn", "MASK_DATE_SHOW_YEAR")]),
        on(2, "rows", None, "rowFilterPolicyItems",
           [{"groups": ["fraud"], "accesses": select,
             "rowFilterInfo": {"filterExpr": "region = ${{USER.region}} AND consent"}},
            {"groups": ["churn"], "accesses": select, "rowFilterInfo": {"filterExpr": churn_filter}}]),
    ]
    return json.dumps({"serviceName": "test_hive", "policyVersion": version, "policies": policies}, indent=2)


def kafka_policies(run: str, topics: dict[str, str]) -> str:
    policies = [{"name": f"{team} reads", "resources": {"topic": {"values": [topics[team]]}},
                 "policyItems": [{"groups": [team], "accesses": [{"type": "consume"}]}]} for team in ("fraud", "churn")]
    policies.append({"name": "groups", "resources": {"consumergroup": {"values": [f"ds-{run}-*"]}},
                     "policyItems": [{"groups": ["fraud", "churn"], "accesses": [{"type": "consume"}]}]})
    return json.dumps({"serviceName": "test_kafka", "policyVersion": 1, "policies": policies}, indent=2)


def read_as(settings, topic: str, group: str) -> list:
    """Every message of ``topic`` read by ``settings``' principal with consumer group ``group``."""
    consumer = clients.consumer(settings, **{"group.id": group, "auto.offset.reset": "earliest",
                                             "enable.partition.eof": True, "isolation.level": "read_committed"})
    consumer.subscribe([topic])
    messages, eof, deadline = [], set(), time.monotonic() + 30
    try:
        while time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None:
                continue
            if message.error():
                assert message.error().code() == KafkaError._PARTITION_EOF, message.error()
                eof.add(message.partition())
                if len(eof) == len(consumer.assignment()):
                    return messages
                continue
            messages.append(message)
        raise AssertionError(f"did not reach the end of {topic}")
    finally:
        consumer.close()


@pytest.fixture(scope="module")
def pipeline(secured_services, tmp_path_factory):
    settings = isolated_settings(secured_services, tmp_path_factory.mktemp("secure-datasets"))
    secured.grant_app_acls(settings, state_paths(secured_services))
    init(settings, say=lambda _: None)
    run = settings.app_id.removeprefix("test-")
    raw = f"{settings.topics.prefix}customers"
    database, table = raw.rsplit(".", 1)
    topics = {"raw": raw, "fraud": f"{raw}.secure.fraud", "churn": f"{raw}.secure.churn"}
    users = {"fraud": [f"fraud-a-{run}", f"fraud-b-{run}"], "churn": [f"churn-{run}"]}
    admin = clients.admin(settings)
    for future in admin.create_topics([NewTopic(raw, 2, 1)]).values():
        future.result(timeout=30)
    registry = clients.registry_client(settings)
    store = open_config_store(settings)
    directory = "users:\n" + "".join(
        f"  {user}: {{groups: [{team}], attributes: {{region: {'EU' if team == 'fraud' else 'US'}}}}}\n"
        for team, names in users.items() for user in names)
    for name, text in ((configs.DIRECTORY, directory), ("security.kafka", kafka_policies(run, topics)),
                       ("security.hive", hive_policies(database, table))):
        configs.check(store, name, text, name)
        store.put(name, text)
    security.cmd_security(argparse.Namespace(folder=None, action="apply", dry_run=False, json=True), settings)

    producer = clients.producer(settings)
    raw_records = []
    for with_phone, batch in ((False, customers(OLD_RECORDS, start=10_000)), (True, customers(RECORDS))):
        schema_str = json.dumps(customer_schema(with_phone))
        registry.register_schema(value_subject(raw), Schema(schema_str, "AVRO"))
        codec = TopicCodec.for_schema(registry, raw, schema_str)
        for record in batch:
            value = record if with_phone else {k: v for k, v in record.items() if k != "phone"}
            producer.produce(raw, key=record["id"].encode(), value=codec.encode(value))
        raw_records += batch
    assert producer.flush(30) == 0

    processor = Processor(settings, raw, free_port())
    processor.wait(lambda s: s["counters"]["records_in"] >= RECORDS + OLD_RECORDS, "the raw records")
    yield {"settings": settings, "processor": processor, "raw": raw_records, "topics": topics, "users": users,
           "store": store, "database": database, "table": table, "run": run, "registry": registry}
    processor.stop()


class Processor:
    """The `mlstream security process` worker of a test, and its /stats/."""

    def __init__(self, settings, raw_topic: str, web_port: int):
        self.web_port, self.log_path = web_port, settings.state_dir / "secure-datasets.log"
        self.process = start_processor(settings, raw_topic, web_port, self.log_path, reload_s=0.5)

    def wait(self, done, what: str, timeout_s: float = 90) -> dict:
        return wait_for_processor(self.process, self.web_port, self.log_path, done, timeout_s, what)

    def stats(self) -> dict:
        return processor_stats(self.web_port)

    def stop(self) -> None:
        stop_app(self.process)


def principal(settings, user: str):
    return as_user(settings, user, passwords.stored_password(secured.secrets_dir(state_paths(settings)), user))


def secure_records(pipeline, team: str, user_index: int = 0) -> list[tuple[dict, dict]]:
    """(decoded value, headers) of the team's secure topic, read with the team's own credentials."""
    settings, run = pipeline["settings"], pipeline["run"]
    decoder = TopicCodec.decoder(pipeline["registry"], pipeline["topics"][team])
    messages = read_as(principal(settings, pipeline["users"][team][user_index]), pipeline["topics"][team],
                       f"ds-{run}-{team}-{time.monotonic_ns()}")
    return [(decoder.decode(m.value()), dict(m.headers() or [])) for m in messages]


def test_each_team_reads_exactly_the_rows_its_filter_selects_masked_as_its_policies_say(pipeline):
    raw = {r["id"]: r for r in pipeline["raw"]}
    current = {r["id"] for r in customers(RECORDS)}
    # The filters, evaluated independently: fraud sees EU rows with consent (and not the 5 missing a phone it masks),
    # churn every US row (it is not granted phone, so those 5 are fine for it)
    expected = {"fraud": sorted(i for i, r in raw.items() if r["region"] == "EU" and r["consent"] and i in current),
                "churn": sorted(i for i, r in raw.items() if r["region"] == "US")}
    for team in ("fraud", "churn"):
        records = secure_records(pipeline, team)
        assert sorted(v["id"] for v, _ in records) == expected[team], team
        assert {h[POLICY_HEADER] for _, h in records} == {b"security.hive@v1 (policyVersion 1)"}
    fraud = {v["id"]: v for v, _ in secure_records(pipeline, "fraud", user_index=1)}  # the team's other member
    some = raw[expected["fraud"][0]]
    assert fraud[some["id"]] == {
        "id": some["id"], "name": masks.mask(some["name"]), "email": masks.mask_hash(some["email"]),
        "phone": "+xx xx xxxx " + some["phone"][-4:], "birth_date": datetime.date(some["birth_date"].year, 1, 1),
        "region": "EU", "consent": True, "income": some["income"], "label": some["label"]}
    churn = {v["id"]: v for v, _ in secure_records(pipeline, "churn")}
    other = raw[expected["churn"][0]]
    assert set(churn[other["id"]]) == {"id", "email", "birth_date", "region", "consent", "income", "label"}
    assert churn[other["id"]]["email"] == other["email"][0] + "***"


def test_a_scan_of_every_secure_topic_finds_no_raw_value_of_a_masked_field(pipeline):
    raw_values = [value.encode() for r in pipeline["raw"] for value in (r["name"], r["email"], r["phone"])]
    raw_dates = {r["birth_date"] for r in pipeline["raw"]}
    admin_settings = security_admin.admin_settings(pipeline["settings"])
    found, scanned = 0, 0
    for team in ("fraud", "churn"):
        decoder = TopicCodec.decoder(pipeline["registry"], pipeline["topics"][team])
        for message in read_all(admin_settings, pipeline["topics"][team]):
            scanned += 1
            found += sum(value in message.value() for value in raw_values)
            found += decoder.decode(message.value())["birth_date"] in raw_dates
    assert scanned > 50 and found == 0


def test_records_missing_a_masked_field_are_dead_lettered_with_the_reason(pipeline):
    letters = TopicCodec.for_topic(pipeline["registry"], pipeline["settings"].topics.dead_letters, "dead_letter")
    decoded = [letters.decode(m.value()) for m in read_all(pipeline["settings"],
                                                           pipeline["settings"].topics.dead_letters)]
    assert len(decoded) == OLD_RECORDS
    assert {d["error_type"] for d in decoded} == {MISSING_MASKED_FIELD}
    assert all(d["error_message"].startswith("team fraud: phone: masked for team fraud by policy 'phones' but "
                                             "missing from the record; never passed on unmasked") for d in decoded)


def test_each_secure_topic_is_derived_from_the_raw_topic_in_lineage_by_a_process_naming_the_policy(pipeline):
    settings, topics = pipeline["settings"], pipeline["topics"]
    assembler = HookMessageAssembler()
    notes = [n["message"] for m in read_all(settings, settings.topics.atlas_hook) for n in assembler.add(m.value())]
    # the first notification of each team's process (later policy versions add more): guids are per message
    processes = {}
    for note in notes:
        for entity in note["entities"]["entities"]:
            if entity["typeName"] == "mlstream_stream_process":
                processes.setdefault(entity["attributes"]["modelName"], (entity, note))
    for team in ("fraud", "churn"):
        process, note = processes[f"secure-dataset:{team}"]
        assert process["attributes"]["modelVersion"] == "security.hive@v1 (policyVersion 1)"
        [source] = process["relationshipAttributes"]["inputs"]
        [target] = process["relationshipAttributes"]["outputs"]
        referred = note["entities"]["referredEntities"]
        assert referred[source["guid"]]["attributes"]["name"] == topics["raw"]
        assert referred[target["guid"]]["attributes"]["name"] == topics[team]


def test_a_team_is_refused_on_the_raw_topic_and_on_the_other_team_s(pipeline):
    fraud = principal(pipeline["settings"], pipeline["users"]["fraud"][0])
    for topic in (pipeline["topics"]["raw"], pipeline["topics"]["churn"]):
        refused = first_read(fraud, topic, f"ds-{pipeline['run']}-fraud-refused")
        assert isinstance(refused, KafkaError) and refused.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, refused


def test_a_policy_change_takes_effect_without_a_restart_and_a_bad_one_keeps_the_last_good_in_force(pipeline):
    store, processor, settings = pipeline["store"], pipeline["processor"], pipeline["settings"]
    database, table, raw_topic = pipeline["database"], pipeline["table"], pipeline["topics"]["raw"]
    # v2: fraud's emails NULL instead of hashed; churn is granted a column the dataset does not have
    store.put("security.hive", hive_policies(database, table, fraud_email_mask="MASK_NULL", churn_extra="ssn",
                                             version=2))
    codec = TopicCodec.for_schema(pipeline["registry"], raw_topic, json.dumps(customer_schema(True)))
    producer = clients.producer(settings)
    later = [dict(r, region="EU", consent=True) for r in customers(10, start=20_000)]
    later += [dict(r, region="US") for r in customers(10, start=30_000)]
    for record in later:
        producer.produce(raw_topic, key=record["id"].encode(), value=codec.encode(record))
    assert producer.flush(30) == 0
    processor.wait(lambda s: s["counters"]["records_in"] >= RECORDS + OLD_RECORDS + len(later) and
                   s["loaded"]["hive"] == 2, "the new records, by v2")
    new_ids = {r["id"] for r in later}
    fraud = [(v, h) for v, h in secure_records(pipeline, "fraud") if v["id"] in new_ids]
    assert len(fraud) == 10 and all(v["email"] is None for v, _ in fraud)
    assert {h[POLICY_HEADER] for _, h in fraud} == {b"security.hive@v2 (policyVersion 2)"}
    churn = [(v, h) for v, h in secure_records(pipeline, "churn") if v["id"] in new_ids]
    assert len(churn) == 10 and {h[POLICY_HEADER] for _, h in churn} == {b"security.hive@v1 (policyVersion 1)"}
    alerts = TopicCodec.for_topic(pipeline["registry"], settings.topics.alerts, "alert")
    raised = [alerts.decode(m.value()) for m in read_all(settings, settings.topics.alerts)]
    assert [(a["alert_type"], a["subject"]) for a in raised] == [(POLICY_NOT_APPLIED, "churn")]
    assert "policy 'churn reads some' names column 'ssn', which " in raised[0]["message"]
    assert raised[0]["message"].endswith("security.hive@v1 (policyVersion 1) stays in force")

    # v3: churn's filter compares a number with a text, which fails on the first record: churn's topic stops
    store.put("security.hive", hive_policies(database, table, version=3, churn_filter="income > 'lots'"))
    time.sleep(1.0)  # past the processor's reload interval: the next batch is secured by v3
    churn_before = processor.stats()["records_per_secure_topic"][pipeline["topics"]["churn"]]
    for record in customers(5, start=40_000):
        producer.produce(raw_topic, key=record["id"].encode(), value=codec.encode(record))
    assert producer.flush(30) == 0
    stats = processor.wait(lambda s: "churn" in s["halted"], "churn's topic to stop")
    assert stats["records_per_secure_topic"][pipeline["topics"]["churn"]] == churn_before
    assert "churn" not in stats["teams"] and "fraud" in stats["teams"]
    assert "cannot compare" in stats["halted"]["churn"]
    raised = [alerts.decode(m.value()) for m in read_all(settings, settings.topics.alerts)]
    assert raised[-1]["subject"] == "churn" and "is no longer written" in raised[-1]["message"]

    # v4: fraud's birth dates by a CUSTOM mask that returns the date itself, which its schema (text, numbers,
    # booleans) cannot hold: fraud's topic stops too, never writing the date
    store.put("security.hive", hive_policies(database, table, version=4, churn_filter="income > 'lots'",
                                             fraud_birth_date={"mask_type": "CUSTOM", "valueExpr": "{col}"}))
    time.sleep(1.0)  # past the processor's reload interval: the next batch is secured by v4
    fraud_before = processor.stats()["records_per_secure_topic"][pipeline["topics"]["fraud"]]
    for record in customers(5, start=50_000):
        producer.produce(raw_topic, key=record["id"].encode(), value=codec.encode(dict(record, region="EU",
                                                                                        consent=True)))
    assert producer.flush(30) == 0
    stats = processor.wait(lambda s: "fraud" in s["halted"], "fraud's topic to stop")
    assert stats["records_per_secure_topic"][pipeline["topics"]["fraud"]] == fraud_before and stats["teams"] == {}
