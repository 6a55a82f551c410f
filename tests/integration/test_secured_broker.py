"""The pipeline on the secured local broker (SASL_SSL, SCRAM-SHA-512, ACLs enforced), and the refusals a user sees.

One stream app runs as a real `mlstream app` process over SASL_SSL; its figures are read back
from Kafka through the same secured clients. The refusals run the real `mlstream` command
with a settings file of their own, as a user would, and check the one line it prints.
"""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
import subprocess
import sys
import time
import uuid
from collections import Counter

import pytest

from mlstream.kafka import clients, problems
from mlstream.kafka.clients import registry_client
from mlstream.kafka.reader import read_all
from mlstream.kafka.serde import TopicCodec, UndecodableValue, value_subject
from mlstream.kafka.topics import init
from mlstream.lineage.hook import HookMessageAssembler
from mlstream.settings import REPO_ROOT
from producers.datasets import examples, source_name
from producers.feed import KafkaFeedSink, play
from spark_jobs.avro import kafka_options
from tests.conftest import isolated_settings
from tests.integration.customers import customers, write_customers_csv
from tools.demo import app_stats, start_app, stop_app, wait_for, wait_for_app
from tools.local_services import secured
from tools.local_services.state import state_paths

pytestmark = pytest.mark.integration

RECORDS = 1250  # all of Phishing
CSV_ROWS = 1000


def isolated_secured(secured_services, state_dir):
    """Settings of one test alone on the secured broker, its client user granted ACLs on their topics."""
    settings = isolated_settings(secured_services, state_dir)
    secured.grant_app_acls(settings, state_paths(secured_services))
    return settings


@pytest.fixture(scope="module")
def secured_run(secured_services, tmp_path_factory):
    """Phishing plus three bad messages through one app over SASL_SSL; return what can be checked."""
    settings = isolated_secured(secured_services, tmp_path_factory.mktemp("secured-state"))
    init(settings, say=lambda _: None)
    record_schema_id = registry_client(settings).get_latest_version(value_subject(settings.topics.records)).schema_id
    bad_values = [b"plain text, not Avro", b"\x00\x7f\xff\xff\xf0\x02a",
                  b"\x00" + record_schema_id.to_bytes(4, "big") + b"\xff\xff\xff"]
    log_path = settings.state_dir / "app.log"
    app = start_app(settings, log_path)
    try:
        wait_for_app(settings, app, log_path)
        feed = play(examples("phishing"), KafkaFeedSink(settings), dataset="phishing", source=source_name("phishing"),
                    rate=500, label_delay_s=0.2, progress=lambda _: None)
        producer = clients.producer(settings)
        for value in bad_values:
            producer.produce(settings.topics.records, key=b"bad", value=value)
        assert producer.flush(30) == 0

        def caught_up():
            stats = app_stats(settings)
            return stats if stats and stats["counters"]["records_in"] >= feed.records + len(bad_values) \
                and stats["counters"]["labels_in"] >= feed.labels and stats["awaiting_label"] == 0 else None

        stats = wait_for(caught_up, 180, f"the app to score and learn everything (see {log_path})")
        time.sleep(6)  # one more metrics window
    finally:
        stop_app(app)
    return {"settings": settings, "feed": feed, "stats": stats, "bad_values": bad_values, "log": log_path}


def decoded(settings, topic, schema):
    codec = TopicCodec.for_topic(registry_client(settings), topic, schema)
    return [codec.decode(m.value()) for m in read_all(settings, topic)]


def test_the_broker_takes_only_sasl_ssl(secured_services):
    assert dict(secured_services.kafka_security)["security.protocol"] == "SASL_SSL"
    assert problems.check_kafka(secured_services) == 1
    plaintext = dataclasses.replace(secured_services, kafka_security=())
    with pytest.raises(problems.ConnectionProblem):
        problems.check_kafka(plaintext, timeout_s=3)


def test_records_labels_predictions_metrics_dead_letters_and_lineage_over_sasl_ssl(secured_run):
    settings, feed, stats = secured_run["settings"], secured_run["feed"], secured_run["stats"]
    assert feed.records == RECORDS and feed.labels == RECORDS
    predictions = decoded(settings, settings.topics.predictions, "prediction")
    assert len(predictions) == RECORDS and len({p["record_id"] for p in predictions}) == RECORDS
    # the model learned, as on the plain broker (the majority class alone gives about 0.56)
    assert stats["model"]["n_learned"] == RECORDS and stats["figures"]["accuracy"] > 0.8
    letters = decoded(settings, settings.topics.dead_letters, "dead_letter")
    assert [letter["error_type"] for letter in letters] == [
        UndecodableValue.NOT_CONFLUENT_FRAMED, UndecodableValue.UNKNOWN_SCHEMA_ID, UndecodableValue.DECODE_FAILED]
    assert [letter["value"] for letter in letters] == secured_run["bad_values"]
    metrics = decoded(settings, settings.topics.metrics, "metric")
    # the windows' rows, not the per-prediction ones
    assert max(m["metrics"].get("records_scored", 0.0) for m in metrics) == float(RECORDS)
    assembler = HookMessageAssembler()
    notifications = [n for m in read_all(settings, settings.topics.atlas_hook) for n in assembler.add(m.value())]
    assert any(n["message"]["type"] == "ENTITY_CREATE_V2" for n in notifications)


def test_spark_reads_the_predictions_over_sasl_ssl(secured_run, spark):
    settings = secured_run["settings"]
    frame = spark.read.format("kafka").options(**kafka_options(settings, settings.topics.predictions)).load()
    assert frame.count() == RECORDS


def test_init_produce_csv_and_app_run_the_pipeline_over_sasl_ssl_on_a_csv(secured_services, tmp_path):
    """Issue 12's "done when": `mlstream init`, `mlstream produce --csv` and `mlstream app`, each a real process on
    the secure-local profile (its SASL_SSL user, ACLs on the test's topic prefix), on a CSV made here."""
    settings = dataclasses.replace(isolated_secured(secured_services, tmp_path / "state"), feature_view="customers")
    rows = customers(CSV_ROWS, seed=5)
    path = tmp_path / "customers.csv"
    write_customers_csv(path, rows)
    env = os.environ | settings.to_env()
    assert env["MLSTREAM_PROFILE"] == "secure-local"

    def mlstream(*args: str) -> subprocess.CompletedProcess:
        done = subprocess.run([sys.executable, "-m", "tools", *args], capture_output=True, text=True, timeout=300,
                              env=env)
        assert done.returncode == 0, done.stderr[-3000:]
        return done

    mlstream("init")
    produced = json.loads(mlstream("produce", "--csv", str(path), "--id-column", "customer_id", "--label-column",
                                   "churned", "--time-column", "signed_up", "--rate", "1000", "--label-delay", "0.2",
                                   "--json").stdout)
    assert produced["records"] == produced["labels"] == CSV_ROWS and produced["feature_view"] == "customers@1"
    log_path = settings.state_dir / "app.log"
    app = start_app(settings, log_path)  # `python -m tools app` with the settings above, MLSTREAM_FEATURE_VIEW too
    try:
        wait_for_app(settings, app, log_path)
        stats = wait_for(lambda: (s := app_stats(settings)) and s["model"]["n_learned"] >= CSV_ROWS and s, 240,
                         f"the app to score and learn the CSV (see {log_path})")
    finally:
        stop_app(app)
    predictions = decoded(settings, settings.topics.predictions, "prediction")
    per_id = Counter(p["record_id"] for p in predictions)
    assert set(per_id) == {r["customer_id"] for r in rows} and set(per_id.values()) == {1}  # exactly one per row
    assert {(p["feature_view"], p["input_topic"]) for p in predictions} == {
        ("customers@1", produced["topic"])}
    truth = {r["customer_id"]: r["churned"] == "yes" for r in rows}
    majority = max(Counter(truth.values()).values()) / len(truth)
    assert stats["figures"]["accuracy"] > majority, (stats["figures"]["accuracy"], majority)
    assert stats["counters"]["dead_letters"] == 0


def run_mlstream(tmp_path, profile_toml: str, *args: str) -> subprocess.CompletedProcess:
    """``mlstream --config FILE --profile p ARGS`` as a user runs it: the file's values, not the test's variables."""
    config = tmp_path / "mlstream.toml"
    config.write_text(profile_toml)
    env = {k: v for k, v in os.environ.items()
           if k not in ("MLSTREAM_BOOTSTRAP_SERVERS", "MLSTREAM_SCHEMA_REGISTRY_URL")} | {"PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run([sys.executable, "-m", "tools", "--config", str(config), "--profile", "p", *args],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env)


def user_profile(settings, user: str, password: str) -> str:
    security = dict(settings.kafka_security)
    return f"""
[profiles.p]
bootstrap_servers = "{settings.bootstrap_servers}"
schema_registry_url = "{settings.schema_registry_url}"
topic_prefix = "{settings.topics.prefix}"

[profiles.p.kafka]
"security.protocol" = "SASL_SSL"
"sasl.mechanism" = "SCRAM-SHA-512"
"sasl.username" = "{user}"
"sasl.password" = "{password}"
"ssl.ca.location" = "{security['ssl.ca.location']}"
"""


def test_a_principal_without_acls_is_refused_with_the_principal_and_the_resource(secured_services, tmp_path):
    user, password = f"nobody-{uuid.uuid4().hex[:6]}", secrets.token_urlsafe(12)
    secured.add_scram_user(secured_services, state_paths(secured_services), user, password)  # at run time
    prefix = f"test-{uuid.uuid4().hex[:8]}."
    settings = dataclasses.replace(secured_services, topics=dataclasses.replace(secured_services.topics, prefix=prefix))
    profile = user_profile(settings, user, password)
    status = run_mlstream(tmp_path, profile, "status")
    assert "kafka            answering" in status.stdout  # the user logs in: what follows is authorization
    done = run_mlstream(tmp_path, profile, "init")
    assert done.returncode == 2, done.stderr
    assert f"mlstream init: error: authorization denied: User:{user} may not CREATE topic {prefix}" in done.stderr
    assert "Traceback" not in done.stderr and "rdkafka" not in done.stderr


def test_a_wrong_password_is_refused_at_authentication(secured_services, tmp_path):
    done = run_mlstream(tmp_path, user_profile(secured_services, secured.CLIENT_USER, "not-the-password"), "init")
    assert done.returncode == 2, done.stderr
    assert (f"mlstream init: error: authentication failed at {secured_services.bootstrap_servers} for user "
            f"'{secured.CLIENT_USER}' (profile p, SASL_SSL SCRAM-SHA-512): check sasl.username and sasl.password"
            in done.stderr)
    assert "Traceback" not in done.stderr and "not-the-password" not in done.stderr
