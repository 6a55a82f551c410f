"""``mlstream demo security``: Ranger-format policies on the secured local broker, a secure dataset per team.

The story, on the ``secure-local`` broker (SASL_SSL, SCRAM-SHA-512, ACLs):

1. the directory (a data owner, a fraud team, a churn team), the Kafka policies and the hive
   policies of ``mlstream/security/examples/`` are stored as versioned configs;
2. ``security apply`` makes the SCRAM users and the ACLs;
3. the data owner publishes a raw ``mlstream.customers`` feed with personal data;
4. the secure-dataset processor writes ``mlstream.customers.secure.fraud`` and ``...churn``;
5. each team's data scientist reads the team's secure topic with their own credentials and
   trains a river model on it; each tries the raw topic (and the other team's) and is refused;
6. a scan of every secure topic counts the raw values of masked fields found there (0);
7. the broker's authorizer decisions are shipped to the audit topic, with the processor's own
   records, and ``mlstream access who`` says who read the dataset.

It ends with a summary in numbers; ``--json`` prints it as one document, with the confluent-kafka
settings of each principal, so the result can be checked with an independent client. The
secured broker keeps running until ``mlstream down --profile secure-local``.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import time
import uuid
from pathlib import Path

from confluent_kafka.admin import NewTopic
from confluent_kafka.schema_registry import Schema
import requests
from river import linear_model, metrics, preprocessing

from mlstream.config_store import open_config_store
from mlstream.errors import AccessDenied, UserError
from mlstream.kafka import clients
from mlstream.kafka.reader import read_all
from mlstream.kafka.serde import TopicCodec, value_subject
from mlstream.kafka.topics import init
from mlstream.profiles import SECURE_LOCAL
from mlstream.security import EXAMPLES, audit, configs, passwords
from mlstream.security.audit_topic import read_audit
from mlstream.security.secure_datasets import POLICY_HEADER, secure_topic
from mlstream.settings import Settings
from producers import pii_customers
from tools import local_services
from tools.bench.rounds import free_port
from tools.demo import exited, start_process, stop_app, wait_for
from tools import security_admin
from tools.security_audit import ship_authorizer_log
from tools.local_services import secured
from tools.local_services.state import state_paths

RAW_TABLE = "customers"
OWNER, DATA_SCIENTISTS = "owner-olga", {"fraud": "fraud-fay", "churn": "churn-chen"}
MASKED_PII = ("name", "email", "phone")
FEATURES = ("tenure_months", "monthly_spend", "support_calls")


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def principal_settings(settings: Settings, user: str) -> Settings:
    password = passwords.stored_password(secured.secrets_dir(state_paths(settings)), user)
    keys = dict(settings.kafka_security) | {"sasl.username": user, "sasl.password": password}
    return dataclasses.replace(settings, kafka_security=tuple(keys.items()))


def store_policies(settings: Settings) -> dict[str, int]:
    """The examples, stored; their topics (``mlstream.customers...``) and database moved to the profile's prefix."""
    store = open_config_store(settings)
    prefix = settings.topics.prefix
    versions = {}
    for name, file in ((configs.DIRECTORY, "directory.yaml"), ("security.kafka", "kafka-policies.json"),
                       ("security.hive", "hive-policies.json")):
        text = (EXAMPLES / file).read_text().replace('"mlstream.customers', f'"{prefix}customers') \
            .replace('"database": {"values": ["mlstream"]}', f'"database": {{"values": ["{prefix.rstrip(".")}"]}}')
        configs.check(store, name, text, str(EXAMPLES / file))
        versions[name] = store.put(name, text)
    return versions


def publish_raw(settings: Settings, raw_topic: str, rows: list[dict]) -> None:
    admin = clients.admin(security_admin.admin_settings(settings))
    if raw_topic not in admin.list_topics(timeout=15).topics:
        for future in admin.create_topics([NewTopic(raw_topic, settings.partitions,
                                                    settings.replication_factor)]).values():
            future.result(timeout=30)
    registry = clients.registry_client(settings)
    text = pii_customers.schema_json()
    registry.register_schema(value_subject(raw_topic), Schema(text, "AVRO"))
    codec = TopicCodec.for_schema(registry, raw_topic, text)
    owner = clients.producer(principal_settings(settings, OWNER))  # the data owner publishes, as the policy says
    for row in rows:
        owner.produce(raw_topic, key=row["id"].encode(), value=codec.encode(row))
    if owner.flush(60) != 0:
        raise UserError(f"the data owner's records did not all reach {raw_topic}")


def start_processor(settings: Settings, raw_topic: str, web_port: int, log_path: Path,
                    reload_s: float = 1.0) -> subprocess.Popen:
    """``mlstream security process --topic RAW`` as a process of its own (a Faust worker), its output to ``log_path``."""
    return start_process([sys.executable, "-m", "tools", "--profile", settings.profile, "security", "process",
                          "--topic", raw_topic, "--web-port", str(web_port), "--reload-s", str(reload_s),
                          "--loglevel", "warning"], settings, log_path)


def processor_stats(web_port: int) -> dict | None:
    """The processor's /stats/ (its figures as of its last commit), None while it does not answer."""
    try:
        response = requests.get(f"http://localhost:{web_port}/stats/", timeout=2)
        return response.json() if response.ok else None
    except requests.RequestException:
        return None


def wait_for_processor(process: subprocess.Popen, web_port: int, log_path: Path, done, timeout_s: float,
                       what: str) -> dict:
    """Wait until the processor's /stats/ satisfies ``done``; fail at once, with its last words, if it died."""
    def ready():
        if process.poll() is not None:
            raise exited("the secure-dataset processor", process, log_path)
        stats = processor_stats(web_port)
        return stats if stats and done(stats) else None

    return wait_for(ready, timeout_s, f"{what} (log: {log_path})")


def train(records: list[dict]) -> dict:
    """A river logistic regression learning churn from a team's secure records, prequentially."""
    model = preprocessing.StandardScaler() | linear_model.LogisticRegression()
    accuracy = metrics.Accuracy()
    for record in records:
        x = {f: float(record[f]) for f in FEATURES}
        accuracy.update(record["churned"], model.predict_one(x))
        model.learn_one(x, record["churned"])
    return {"records_trained_on": len(records), "prequential_accuracy": round(accuracy.get(), 3)}


def run_security_demo(settings: Settings, records: int = 1000) -> dict:
    started = time.monotonic()
    if settings.profile != SECURE_LOCAL:
        settings = Settings.from_env(profile=SECURE_LOCAL, config=settings.config_file)
    say("[1/6] the secured local broker (SASL_SSL, SCRAM-SHA-512, ACLs) and its registry")
    local_services.up(settings, progress=say)
    init(settings, say=lambda _: None)
    raw_topic = f"{settings.topics.prefix}{RAW_TABLE}"
    say("[2/6] policies as versioned configs: security.directory, security.kafka, security.hive")
    versions = store_policies(settings)
    say("[3/6] security apply: SCRAM users and Kafka ACLs")
    store = open_config_store(settings)
    security_admin.apply_policies(settings, store)
    run = uuid.uuid4().hex[:6]
    rows = pii_customers.customers(records, run=run)
    say(f"[4/6] {OWNER} publishes {records} customers with personal data to {raw_topic}")
    publish_raw(settings, raw_topic, rows)
    say("[5/6] the secure-dataset processor writes a masked, row-filtered topic per team")
    log_path = settings.state_dir / "logs" / f"secure-datasets-{run}.log"
    web_port = free_port()
    processor = start_processor(settings, raw_topic, web_port, log_path)
    try:
        stats = wait_for_processor(processor, web_port, log_path, lambda s: s["counters"]["records_in"] >= records,
                                   180, f"the secure-dataset processor to secure {records} records")
    finally:
        stop_app(processor)
    say("[6/6] each team's data scientist reads and trains; reads of the raw and the other team's topic are refused")
    ids = {row["id"] for row in rows}
    registry = clients.registry_client(settings)
    teams, denied = {}, []
    for team, user in DATA_SCIENTISTS.items():
        as_user = principal_settings(settings, user)
        topic = secure_topic(raw_topic, team)
        decoder = TopicCodec.decoder(registry, topic)
        messages = [m for m in read_all(as_user, topic) if m.key() and m.key().decode() in ids]
        decoded = [decoder.decode(m.value()) for m in messages]
        teams[team] = {"topic": topic, "data_scientist": user, "records": len(decoded),
                       "policy_versions": sorted({dict(m.headers() or [])[POLICY_HEADER].decode() for m in messages}),
                       "fields_masked": stats["teams"].get(team, {}).get("masked", []),
                       "fields_left_out": sorted(set(pii_customers.schema_fields()) -
                                                 set(stats["teams"].get(team, {}).get("columns", []))),
                       "rows_filtered": stats["rows_filtered_per_team"].get(team, 0),
                       **train(decoded)}
        for forbidden in (raw_topic, *(secure_topic(raw_topic, other) for other in DATA_SCIENTISTS if other != team)):
            try:
                read_all(as_user, forbidden)
            except AccessDenied:
                denied.append({"user": user, "topic": forbidden, "error": "TOPIC_AUTHORIZATION_FAILED"})
            else:
                raise UserError(f"{user} read {forbidden}: the ACLs did not hold")
    raw_values = [row[f].encode() for row in rows for f in MASKED_PII]
    raw_dates = {row["birth_date"] for row in rows}
    found = 0
    scanning = security_admin.admin_settings(settings)
    for team in DATA_SCIENTISTS:
        decoder = TopicCodec.decoder(registry, secure_topic(raw_topic, team))
        for message in read_all(scanning, secure_topic(raw_topic, team)):
            found += sum(value in message.value() for value in raw_values)
            found += decoder.decode(message.value()).get("birth_date") in raw_dates
    shipped = ship_authorizer_log(settings)
    accessed = audit.who(read_audit(settings), raw_topic)
    about_raw = [r for r in read_audit(settings) if audit.concerns(r, raw_topic)]
    return {
        "raw_topic": raw_topic,
        "records_published": records,
        "secure_topics": {teams[t]["topic"]: t for t in teams},
        "records_per_secure_topic": {teams[t]["topic"]: teams[t]["records"] for t in teams},
        "raw_values_in_secure_topics": found,
        "denied_reads": len(denied),
        "denials": denied,
        "dead_letters": stats["counters"]["dead_letters"],
        "alerts": stats["counters"]["alerts"],
        "audit_records": len(about_raw),
        "audit_topic": shipped["topic"],
        "audited_denials": [r for r in accessed if r["result"] == "denied"],
        "who": accessed,
        "teams": teams,
        "policy_versions": versions,
        "principals": {user: {"team": team, **clients.kafka_config(principal_settings(settings, user))}
                       for team, user in [("data-owners", OWNER), *DATA_SCIENTISTS.items()]},
        "took_s": round(time.monotonic() - started, 1),
    }


def print_summary(summary: dict) -> None:
    print("=" * 72)
    print(f" mlstream demo security: {summary['raw_topic']} -> a secure dataset per team")
    print("=" * 72)
    print(f" raw records published    {summary['records_published']} by {OWNER} (the data owner)")
    for team, t in summary["teams"].items():
        print(f" {t['topic']:<40} {t['records']:>5} records for team {team} ({t['data_scientist']})")
        print(f"   masked {', '.join(t['fields_masked']) or 'none'}; left out "
              f"{', '.join(t['fields_left_out']) or 'none'}; rows filtered {t['rows_filtered']}; by "
              f"{', '.join(t['policy_versions'])}")
        print(f"   trained on it: {t['records_trained_on']} records, prequential accuracy {t['prequential_accuracy']}")
    print(f" raw values of masked fields in secure topics: {summary['raw_values_in_secure_topics']} (a scan of every "
          f"record)")
    print(f" denied reads             {summary['denied_reads']} (each data scientist on the raw topic and the other "
          f"team's: TOPIC_AUTHORIZATION_FAILED)")
    print(f" dead letters, alerts     {summary['dead_letters']}, {summary['alerts']}")
    print(f" audit records            {summary['audit_records']} about {summary['raw_topic']} on "
          f"{summary['audit_topic']}; who read it (mlstream access who {summary['raw_topic']}):")
    for row in summary["who"]:
        if row["access"] in ("consume", "publish", "mask") or row["result"] == "denied":
            print(f"   {row['user']:<12} {row['result']:<8} {row['access']:<8} {row['resource']:<40} "
                  f"{row['events']:>5} event(s) from {row['first']}")
    print(f" took                     {summary['took_s']} s; the secured broker keeps running: "
          f"mlstream down --profile secure-local")
