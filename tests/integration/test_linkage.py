"""Record linkage on the real broker and registry: a restart mid-feed, bad input, lineage, small evals.

The linkage app runs as a real `mlstream linkage app` process; what it did is read
back from Kafka, not taken from its word.
"""

from __future__ import annotations

import dataclasses
import re
import signal
import threading

import pytest
import requests

from apps.linker.settings import LinkageSettings
from linkage.config import CONFIG_DIR, LinkageConfig
from linkage.datasets import load_febrl
from linkage.evaluation import quality
from mlstream.config_store import SchemaRegistryConfigStore
from mlstream.kafka import clients
from mlstream.kafka.reader import read_all
from mlstream.kafka.topics import init, topic_codec
from mlstream.lineage.hook import HookMessageAssembler
from mlstream.lineage.typesystem import TypeSystem
from producers.linkage_feed import KafkaLinkageSink, play_records
from producers.linkage_review import Reviewer, review
from tests.conftest import free_port
from tests.people_csv import PEOPLE_CONFIG, write_people_csvs
from tools.bench.linkage_eval import Run, run_eval
from tools.demo import stop_app, wait_for

pytestmark = pytest.mark.integration

RECORDS = 2400  # 1,200 of each FEBRL4 source, interleaved
QUIET = lambda line: None  # noqa: E731


@pytest.fixture
def linkage_run(isolated):
    linkage = LinkageSettings(config="febrl", app_id=f"{isolated.app_id}-linkage", web_port=free_port())
    init(isolated, say=QUIET)
    return Run(isolated, linkage, isolated.state_dir / "linkage.log")


def test_a_restart_mid_feed_keeps_the_index_entities_and_model(linkage_run):
    settings = linkage_run.settings
    # The config comes from the registry: the bundled one with a list of accepted sources, and a
    # first EM fit early enough for this short feed.
    text = (CONFIG_DIR / "febrl.yaml").read_text().replace("warmup_pairs: 200", "warmup_pairs: 50")
    text += "sources: [febrl4-a, febrl4-b]\n"
    store = SchemaRegistryConfigStore(clients.registry_client(settings), settings.topics.prefix)
    version = store.put("linkage-febrl", text)
    run = dataclasses.replace(linkage_run, linkage=dataclasses.replace(linkage_run.linkage,
                                                                       config="registry:linkage-febrl"))
    data = load_febrl("febrl4").head(RECORDS)
    half = RECORDS // 2
    sink = KafkaLinkageSink(settings)

    process = run.start_app()
    try:
        play_records(data.records[:half], sink, progress=QUIET)
        first = run.wait_until(process, half, 120, QUIET)
    finally:
        stop_app(process)
    assert first["records_indexed"] == half and first["model"]["fits"] >= 1

    # While the app is down: an undecodable value, the rest of the feed, a record of an unknown
    # source and an exact repeat. The restarted app finds them waiting, its state restored from
    # the state topic.
    producer = clients.producer(settings)
    producer.produce(settings.topics.linkage_records, key=b"junk", value=b"\x00\x00")
    producer.flush(10)
    play_records(data.records[half:], sink, progress=QUIET)
    play_records([dataclasses.replace(data.records[0], source="febrl4-c"), data.records[5]], sink, progress=QUIET)
    process = run.start_app()
    try:
        second = wait_for(lambda: (s := run.stats()) and s["records_indexed"] == RECORDS
                          and s["counters"]["dead_letters"] >= 2 and s, 120,
                          "the restarted app to link the rest of the feed")
        prometheus = requests.get(f"http://localhost:{run.linkage.web_port}/metrics", timeout=5).text
    finally:
        stop_app(process)
    # Prometheus reads the same figures /stats/ shows
    assert f"mlstream_linkage_records_indexed {float(RECORDS)}" in prometheus
    assert re.search(r'mlstream_linkage_linker_events_total\{event="duplicate_records"\} [1-9]', prometheus)
    # the restarted worker found every record of the first half, its entities and its model
    dead = topic_codec(clients.registry_client(settings), settings, settings.topics.dead_letters)
    letters = [dead.decode(m.value()) for m in read_all(settings, settings.topics.dead_letters)]
    # Exactly once: each bad message dead-lettered once, in the transaction of its batch.
    assert sorted((d["source_offset"], d["error_type"]) for d in letters) == [
        (half, "NOT_CONFLUENT_FRAMED"), (RECORDS + 1, "UNKNOWN_SOURCE")], letters
    assert second["records_indexed"] == RECORDS
    assert second["model"]["fits"] >= first["model"]["fits"]  # restored from its table, not refitted from 0
    assert second["config"]["version"] == str(version)
    assert second["linker"]["duplicate_records"] >= 1 and second["linker"]["unknown_source"] >= 1

    events = run.link_events()
    assert sorted((e["source"], e["record_id"]) for e in events) == sorted((r.source, r.record_id)
                                                                           for r in data.records)
    position = {r.key: i for i, r in enumerate(data.records)}
    linked_across_restart = [e for e in events[half:] if any(
        c["linked"] and position[f"{c['source']}|{c['record_id']}"] < half for c in e["candidates"])]
    assert len(linked_across_restart) > 50
    figures = quality(events, data.true_pairs, mode="link", possible_pairs=data.possible_pairs())
    assert figures["precision"] > 0.99 and figures["recall"] > 0.98

    # entity updates: every record's entity announced, merges name what they absorbed
    codec = topic_codec(clients.registry_client(settings), settings, settings.topics.entity_updates)
    updates = [codec.decode(m.value()) for m in read_all(settings, settings.topics.entity_updates)]
    assert len(updates) == RECORDS
    final_entity = {}
    for update in updates:
        for ref in update["records"]:
            final_entity[(ref["source"], ref["record_id"])] = update["entity_id"]
    assert all(final_entity[(e["source"], e["record_id"])] == e["entity_id"] for e in events[-100:])

    # lineage: the linkage process with its config version, between the feed topic and the link topics
    assembler = HookMessageAssembler()
    notifications = [n for m in read_all(settings, settings.topics.atlas_hook)
                     for n in assembler.add(m.value())]
    types = TypeSystem.load()
    processes = []
    for n in notifications:
        assert types.validate_notification(n["message"]) == []
        processes += [e for e in n["message"]["entities"]["entities"] if e["typeName"] == "mlstream_stream_process"]
    assert {p["attributes"]["modelName"] for p in processes} == {"linkage:febrl"}
    assert {p["attributes"]["modelVersion"] for p in processes} == {str(version)}


def test_sigkills_mid_feed_link_every_record_once_and_resume_the_model_where_it_was(linkage_run):
    """The data plane's guarantee for linkage: killed at any point, every record has exactly one link
    event and entity update (its batch's transaction), and the restarted linker finds the records
    and the model of the last commit, so records after a kill link to records before it."""
    run, settings = linkage_run, linkage_run.settings
    data = load_febrl("febrl4").head(RECORDS)
    feed = threading.Thread(target=play_records, args=(data.records, KafkaLinkageSink(settings)),
                            kwargs={"rate": 200, "progress": QUIET}, daemon=True)  # 12 s: time for two kills
    feed.start()
    process = run.start_app()
    try:
        for kill_at in (RECORDS // 4, RECORDS // 2):
            # Committed link events (read_committed), not /stats/ (which shows the batch in flight too):
            # the kill comes after a commit, often in the middle of the next transaction.
            wait_for(lambda: len(read_all(settings, settings.topics.links)) >= kill_at, 120,
                     f"{kill_at} committed link events")
            process.send_signal(signal.SIGKILL)
            process.wait()
            process = run.start_app()
        feed.join()
        final = wait_for(lambda: (s := run.stats()) and s["records_indexed"] == RECORDS and s, 60,
                         "every record indexed")
    finally:
        stop_app(process)
    # the last restart resumed from the second kill's commit: its records and the model
    assert final["model"]["fits"] >= 1 and final["data_plane"]["restored_entries"] > RECORDS // 2, final
    events = run.link_events()
    keys = [(e["source"], e["record_id"]) for e in events]
    assert sorted(keys) == sorted((r.source, r.record_id) for r in data.records)  # each once: none lost, none twice
    assert len(read_all(settings, settings.topics.entity_updates)) == RECORDS  # messages, not offsets
    figures = quality(events, data.true_pairs, mode="link", possible_pairs=data.possible_pairs())
    assert figures["precision"] > 0.99 and figures["recall"] > 0.98  # across the kills as without them


def test_a_small_eval_reports_stream_and_batch_figures(isolated):
    settings = isolated
    linkage = LinkageSettings(config="febrl", app_id=f"{settings.app_id}-linkage", web_port=free_port())
    init(settings, say=QUIET)  # the ATLAS_HOOK topic of this test
    report = run_eval(settings, linkage, dataset="febrl4", config_spec=None, records=1000, latency_rate=200,
                      latency_records=300, say=QUIET)
    stream, batch = report["stream"], report["batch_baseline"]
    assert stream["link_events"] == 1000 and stream["dead_letters"] == 2 and stream["duplicates_skipped"] == 1
    assert stream["f1"] > 0.98 and batch["f1"] > 0.98
    assert stream["dashboard_f1"] == pytest.approx(stream["f1"])  # the app's live figure, from its own count
    assert stream["pairs_completeness"] == batch["pairs_completeness"]
    assert stream["records_per_second"] > 0 and report["stream_latency"]["records"] == 300
    assert report["stream_latency"]["latency_ms_p50"] is not None
    left = [t for t in clients.admin(settings).list_topics(timeout=10).topics
            if t.startswith(f"{settings.topics.prefix}eval-")]
    assert left == []
    subjects = [s for s in clients.registry_client(settings).get_subjects()
                if s.startswith(f"{settings.topics.prefix}eval-")]
    assert subjects == []  # the passes' value subjects went with their topics


@pytest.mark.parametrize("truth_from", ["config", "file"])
def test_an_eval_of_csv_files_in_another_layout_takes_its_truth_from_the_config_or_a_file(isolated, tmp_path,
                                                                                          truth_from):
    settings = isolated
    linkage = LinkageSettings(config="febrl", app_id=f"{settings.app_id}-linkage", web_port=free_port())
    init(settings, say=QUIET)
    crm, billing, truth = write_people_csvs(tmp_path, 300)
    config = tmp_path / "people.yaml"
    pairs = None
    if truth_from == "config":
        config.write_text(PEOPLE_CONFIG + "truth: {field: record_id, pattern: '^[cb](\\d+)$'}\n")
    else:
        config.write_text(PEOPLE_CONFIG)
        pairs = tmp_path / "pairs.csv"
        pairs.write_text("source_a,record_id_a,source_b,record_id_b\n" + "".join(
            ",".join(key.replace("|", ",") for key in sorted(pair)) + "\n" for pair in truth))
    said = []
    report = run_eval(settings, linkage, dataset="febrl4", config_spec=str(config), records=None, latency_rate=0,
                      latency_records=None, csv_files=[(crm, "crm", "Id"), (billing, "billing", "Id")],
                      truth_pairs_file=pairs, say=said.append)
    assert not [line for line in said if line.startswith("warning")]
    stream, batch = report["stream"], report["batch_baseline"]
    assert report["dataset"] == "crm+billing" and report["true_pairs"] == len(truth) == 300
    assert stream["link_events"] == 600 and stream["f1"] > 0.95 and batch["f1"] > 0.5
    if truth_from == "config":
        assert stream["dashboard_f1"] == pytest.approx(stream["f1"])
    else:
        assert stream["dashboard_f1"] is None  # the app's live figures need the config's truth key


def test_the_classifier_learns_from_a_reviewers_delayed_verdicts_through_kafka(linkage_run, tmp_path):
    settings = linkage_run.settings
    config = tmp_path / "febrl-reviewed.yaml"
    config.write_text((CONFIG_DIR / "febrl.yaml").read_text() + "classifier: {min_confirmed: 100, weight: 0.5}\n")
    run = dataclasses.replace(linkage_run, linkage=dataclasses.replace(linkage_run.linkage, config=str(config)))
    data = load_febrl("febrl4").head(3200)
    process = run.start_app()
    try:
        # 2,400 records give about 520 link events with candidates (FEBRL 4's sources are interleaved)
        play_records(data.records[:2400], KafkaLinkageSink(settings), progress=QUIET)
        run.wait_until(process, 2400, 120, QUIET)
        reviewer = Reviewer(LinkageConfig.from_file(config).truth, share=1.0, per_record=2, delay_s=0.5)
        sent = review(settings, reviewer, limit=300, timeout_s=60, progress=QUIET)
        learned = wait_for(lambda: (s := run.stats()) and s["classifier"]["learned"] >= sent and s, 60,
                           "the app to learn the verdicts")
        play_records(data.records[2400:], KafkaLinkageSink(settings), progress=QUIET)  # now scored with it too
        final = run.wait_until(process, 3200, 120, QUIET)
    finally:
        stop_app(process)
    assert sent == 300 and learned["classifier"]["ready"]
    assert learned["classifier"]["prequential_accuracy"] > 0.9
    assert final["counters"]["confirmed_pairs_in"] == 300 and final["counters"]["dead_letters"] == 0
    figures = quality(run.link_events(), data.true_pairs, mode="link", possible_pairs=data.possible_pairs())
    assert figures["precision"] > 0.99 and figures["recall"] > 0.98
    # lineage: the reviewers' verdicts are an input of this linkage process
    assembler = HookMessageAssembler()
    bodies = [n["message"]["entities"] for m in read_all(settings, settings.topics.atlas_hook)
              for n in assembler.add(m.value()) if n["message"]["type"] == "ENTITY_CREATE_V2"]
    body = next(b for b in bodies if any(e["typeName"] == "mlstream_stream_process" for e in b["entities"]))
    entities = [*body["entities"], *body["referredEntities"].values()]
    by_guid = {e["guid"]: e["attributes"]["qualifiedName"] for e in entities}
    process = next(e for e in body["entities"] if e["typeName"] == "mlstream_stream_process")
    inputs = {by_guid[ref["guid"]] for ref in process["relationshipAttributes"]["inputs"]}
    namespace = settings.atlas_namespace
    assert inputs == {f"{t.lower()}@{namespace}" for t in (settings.topics.linkage_records,
                                                            settings.topics.confirmed_pairs)}
