"""End to end on the real broker and registry: records in, predictions out, labels learned.

One stream app runs as a real `mlstream app` process per test module; the
figures are read back from Kafka, not taken from the app's word.
"""

from __future__ import annotations

import dataclasses
import itertools
import time

import pytest
from confluent_kafka.admin import ConfigResource, ResourceType

from mlstream.kafka import clients
from mlstream.kafka.reader import read_all
from mlstream.kafka.serde import TopicCodec, UndecodableValue, value_subject
from mlstream.kafka.topics import init
from mlstream.lineage.hook import HookMessageAssembler
from mlstream.lineage.typesystem import TypeSystem
from producers.datasets import examples, source_name
from producers.feed import KafkaFeedSink, play
from tests.conftest import isolated_settings
from tools.demo import app_stats, start_app, stop_app, wait_for, wait_for_app

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def pipeline_run(services, tmp_path_factory):
    """Play all of Phishing plus three bad messages through one app; return what can be checked."""
    # min.insync.replicas set (1: one broker), to check it reaches every topic the run makes
    settings = dataclasses.replace(isolated_settings(services, tmp_path_factory.mktemp("state")), min_insync_replicas=1)
    init(settings, say=lambda _: None)
    registry = clients.registry_client(settings)
    record_schema_id = registry.get_latest_version(value_subject(settings.topics.records)).schema_id
    bad_values = [
        b"plain text, not Avro",                                        # NOT_CONFLUENT_FRAMED
        b"\x00\x7f\xff\xff\xf0" + b"\x02a",                             # UNKNOWN_SCHEMA_ID
        b"\x00" + record_schema_id.to_bytes(4, "big") + b"\xff\xff\xff",  # DECODE_FAILED
    ]
    log_path = settings.state_dir / "app.log"
    app = start_app(settings, log_path)
    try:
        wait_for_app(settings, app, log_path)
        # Paced, labels shortly after their records: the model learns while it scores (a feed sent
        # all at once would be scored in a batch or two, before any label arrived).
        feed = play(examples("phishing"), KafkaFeedSink(settings), dataset="phishing",
                    source=source_name("phishing"), rate=500, label_delay_s=0.2, progress=lambda _: None)
        producer = clients.producer(settings)
        for value in bad_values:
            producer.produce(settings.topics.records, key=b"bad", value=value)
        producer.flush(10)

        def caught_up():
            stats = app_stats(settings)
            return stats if stats and stats["counters"]["records_in"] >= feed.records + len(bad_values) \
                and stats["counters"]["labels_in"] >= feed.labels and stats["awaiting_label"] == 0 else None

        stats = wait_for(caught_up, 180, f"the app to score and learn everything (see {log_path})")
        time.sleep(6)  # let one more metrics window close
    finally:
        stop_app(app)
    return {"settings": settings, "feed": feed, "stats": stats, "bad_values": bad_values, "log": log_path}


def decode_all(settings, topic, schema):
    codec = TopicCodec.for_topic(clients.registry_client(settings), topic, schema)
    return [(m, codec.decode(m.value())) for m in read_all(settings, topic)]


def test_exactly_one_prediction_per_record_naming_its_input_offset(pipeline_run):
    settings, feed = pipeline_run["settings"], pipeline_run["feed"]
    record_offsets = {}
    codec = TopicCodec.for_topic(clients.registry_client(settings), settings.topics.records, "record")
    for message in read_all(settings, settings.topics.records):
        try:
            record_offsets[codec.decode(message.value())["id"]] = (message.partition(), message.offset())
        except UndecodableValue:
            pass
    predictions = [value for _, value in decode_all(settings, settings.topics.predictions, "prediction")]
    assert feed.records == 1250 and len(record_offsets) == 1250
    assert len(predictions) == 1250
    assert {p["record_id"] for p in predictions} == set(record_offsets)
    for p in predictions:
        assert (p["input_partition"], p["input_offset"]) == record_offsets[p["record_id"]]
        assert p["input_topic"] == settings.topics.records
        assert p["model_name"] == settings.model and p["model_version"] == settings.model_version
    assert len({p["prediction_id"] for p in predictions}) == 1250


def test_the_model_learned_every_label(pipeline_run):
    stats = pipeline_run["stats"]
    assert stats["model"]["n_learned"] == 1250
    assert stats["figures"]["records_learned"] == 1250
    # Progressive accuracy on Phishing: the majority class alone gives about 0.56.
    assert stats["figures"]["accuracy"] > 0.8


def test_metrics_records_are_on_the_metrics_topic(pipeline_run):
    settings = pipeline_run["settings"]
    metrics = [value for _, value in decode_all(settings, settings.topics.metrics, "metric")]
    assert metrics, "no metrics records"
    last = max(metrics, key=lambda m: m["end_timestamp_ms"])
    assert last["model_build_crn"].endswith(f"/build/{settings.model_version}")
    assert last["metrics"]["records_scored"] == 1250.0
    assert last["metrics"]["records_learned"] == 1250.0
    assert 0.8 < last["metrics"]["accuracy"] <= 1.0
    assert last["metrics"]["latency_p99_ms"] >= last["metrics"]["latency_p50_ms"] > 0
    assert all(m["start_timestamp_ms"] <= m["end_timestamp_ms"] for m in metrics)


def test_bad_messages_are_dead_lettered_with_their_reason_and_bytes(pipeline_run):
    settings, bad_values = pipeline_run["settings"], pipeline_run["bad_values"]
    letters = [value for _, value in decode_all(settings, settings.topics.dead_letters, "dead_letter")]
    assert [letter["error_type"] for letter in letters] == [
        UndecodableValue.NOT_CONFLUENT_FRAMED, UndecodableValue.UNKNOWN_SCHEMA_ID, UndecodableValue.DECODE_FAILED]
    assert [letter["value"] for letter in letters] == bad_values
    for letter in letters:
        assert letter["source_topic"] == settings.topics.records and letter["key"] == b"bad"
        assert letter["error_message"] and letter["failed_by"] == settings.app_id
    assert pipeline_run["stats"]["counters"]["dead_letters"] == 3


def test_startup_lineage_is_a_valid_atlas_hook_message(pipeline_run):
    settings = pipeline_run["settings"]
    assembler = HookMessageAssembler()
    notifications = [n for m in read_all(settings, settings.topics.atlas_hook)
                     for n in assembler.add(m.value())]
    assert notifications, "no ATLAS_HOOK message"
    creates = [n for n in notifications if n["message"]["type"] == "ENTITY_CREATE_V2"]
    assert creates
    types = TypeSystem.load()
    problems = types.validate_notification(creates[0]["message"])
    assert problems == []
    body = creates[0]["message"]["entities"]
    entities = [*body["entities"], *body["referredEntities"].values()]
    names = {e["attributes"]["qualifiedName"] for e in entities}
    for topic in (settings.topics.records, settings.topics.labels, settings.topics.predictions):
        assert f"{topic.lower()}@{settings.atlas_namespace}" in names
    process = next(e for e in entities if types.is_subtype(e["typeName"], "Process"))
    by_guid = {e["guid"]: e["attributes"]["qualifiedName"] for e in entities}
    inputs = {by_guid[ref["guid"]] for ref in process["relationshipAttributes"]["inputs"]}
    outputs = {by_guid[ref["guid"]] for ref in process["relationshipAttributes"]["outputs"]}
    assert inputs == {f"{t.lower()}@{settings.atlas_namespace}" for t in (settings.topics.records, settings.topics.labels)}
    assert f"{settings.topics.predictions.lower()}@{settings.atlas_namespace}" in outputs


def test_every_topic_of_the_run_has_the_profiles_durability_faust_s_own_too(pipeline_run):
    settings = pipeline_run["settings"]
    admin = clients.admin(settings)
    made = sorted(name for name in admin.list_topics(timeout=15).topics
                  if name.startswith(settings.topics.prefix) or name.startswith(settings.app_id))
    assert f"{settings.topics.prefix}{settings.app_id}-state" in made  # the data plane's
    assert f"{settings.app_id}-__assignor-__leader" in made  # Faust's leader election's, made by the app
    configs = {resource.name: future.result(timeout=30) for resource, future in admin.describe_configs(
        [ConfigResource(ResourceType.TOPIC, name) for name in made]).items()}
    assert {name: entries["min.insync.replicas"].value for name, entries in configs.items()} == \
        dict.fromkeys(made, "1")
    assert all(not entries["min.insync.replicas"].is_default for entries in configs.values())


def test_a_restarted_app_continues_from_its_checkpoint(pipeline_run):
    settings = pipeline_run["settings"]
    app = start_app(settings, pipeline_run["log"])
    try:
        stats = wait_for_app(settings, app, pipeline_run["log"])
    finally:
        stop_app(app)
    assert stats["model"]["n_learned"] == 1250


def test_a_restart_with_records_waiting_scores_each_record_once(isolated):
    """Records sent while the app is down are all scored once after it restarts.

    (faust-streaming 0.15.3 skipped a waiting record on such restarts; the data plane resumes from
    its committed offsets.) Checked on the predictions in Kafka, not on counters.
    """
    settings = isolated
    init(settings, say=lambda _: None)
    log_path = settings.state_dir / "app.log"
    records = list(itertools.islice(examples("phishing"), 600))

    def feed(part):
        return play(part, KafkaFeedSink(settings), dataset="phishing", source=source_name("phishing"),
                    label_delay_s=0.0, progress=lambda _: None)

    app = start_app(settings, log_path)
    try:
        wait_for_app(settings, app, log_path)
        feed(records[:300])
        wait_for(lambda: (app_stats(settings) or {"counters": {"records_in": 0}})["counters"]["records_in"] >= 300,
                 120, "the first 300 records")
    finally:
        stop_app(app)
    feed(records[300:])  # waiting while the app is down, in every partition
    app = start_app(settings, log_path)
    try:
        wait_for_app(settings, app, log_path)
        stats = wait_for(lambda: (s := app_stats(settings)) and s["counters"]["predictions_out"] >= 300 and s,
                         120, f"the waiting records to be scored (see {log_path})")
        time.sleep(2)  # anything scored twice would show now
    finally:
        stop_app(app)
    predictions = [p for _, p in decode_all(settings, settings.topics.predictions, "prediction")]
    per_offset = {}
    for p in predictions:
        per_offset.setdefault((p["input_partition"], p["input_offset"]), []).append(p)
    assert len(predictions) == len(per_offset) == 600, (len(predictions), len(per_offset),
                                                         stats["counters"])
