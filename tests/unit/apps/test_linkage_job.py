"""The linkage app's job without Kafka: state changelog entries, a restore that resumes exactly, figures on commit."""

from __future__ import annotations

import json

from apps.linker.dashboard import LinkageHistory
from apps.linker.linkage_job import MODEL, RECORD, LinkageJob
from linkage.config import LinkageConfig
from linkage.datasets import load_febrl
from linkage.evaluation import LiveQuality
from mlstream.settings import Settings
from tests.unit.apps.test_scoring_job import Codec, Message, Out

SETTINGS = Settings.from_env()
TOPICS = SETTINGS.topics
CONFIG = LinkageConfig.from_file("febrl")
COUNTERS = ("records_in", "links_out", "entity_updates_out", "dead_letters", "confirmed_pairs_in")


def new_job() -> LinkageJob:
    codecs = {name: Codec() for name in ("records", "links", "entities", "confirmed", "dead_letters")}
    return LinkageJob(SETTINGS, "linker-under-test", CONFIG, "test", codecs, dict.fromkeys(COUNTERS, 0),
                      LinkageHistory(), LiveQuality(CONFIG.mode))


def messages(records, first_offset=0) -> list[Message]:
    return [Message(TOPICS.linkage_records, 0, first_offset + i,
                    {"source": r.source, "record_id": r.record_id, "fields": r.fields, "event_time": 1_000 + i})
            for i, r in enumerate(records)]


def run_batch(job: LinkageJob, batch: list[Message]) -> Out:
    out = Out()
    job.process(batch, job.prepare(batch, out), out)
    return out


def changelog(outs: list[Out]) -> dict[bytes, bytes]:
    """What restore_state reads back: the latest value per key, in the order keys first appeared."""
    entries: dict[bytes, bytes] = {}
    for out in outs:
        for _, key, value in out.states:
            if value is None:
                entries.pop(key, None)
            else:
                entries[key] = value
    return entries


def decisions(out: Out) -> list:
    events = [json.loads(value) for topic, value in out.produced if topic == TOPICS.links]
    return [(e["entity_id"], [(c["record_id"], c["linked"]) for c in e["candidates"]]) for e in events]


def test_a_linker_restored_from_its_changelog_links_the_rest_exactly_as_an_uninterrupted_one():
    records = load_febrl("febrl4").records[:3000]
    uninterrupted = new_job()
    uninterrupted.assigned({0: {}})
    whole = [run_batch(uninterrupted, messages(records[i:i + 500], i)) for i in range(0, 3000, 500)]

    first = new_job()
    first.assigned({0: {}})
    committed = [run_batch(first, messages(records[i:i + 500], i)) for i in range(0, 2000, 500)]
    entries = changelog(committed)
    assert sum(key.startswith(RECORD) for key in entries) == 2000  # one entry per record linked
    assert MODEL + CONFIG.name.encode() in entries  # the model with every pair observed, not only at refits
    restarted = new_job()
    restarted.assigned({0: entries})
    assert restarted.records_indexed() == 2000 and restarted.entities() == first.entities()
    assert restarted.linker().model.n_observed == first.linker().model.n_observed
    resumed = [run_batch(restarted, messages(records[i:i + 500], i)) for i in range(2000, 3000, 500)]
    assert [d for out in resumed for d in decisions(out)] == [d for out in whole[4:] for d in decisions(out)]
    assert restarted.linker().model.n_fits == uninterrupted.linker().model.n_fits >= 1


def test_counts_and_figures_show_when_the_batch_commits_and_never_for_one_that_did_not():
    records = load_febrl("febrl4").records[:200]
    job = new_job()
    job.assigned({0: {}})
    run_batch(job, messages(records[:100]))
    assert job.counters["links_out"] == 0 and job.live_quality.figures()["records"] == 0  # in flight
    job.committed()
    assert job.counters["records_in"] == job.counters["links_out"] == 100
    assert job.live_quality.figures()["records"] == 100 and job.linker_counters["records_linked"] == 100
    run_batch(job, messages(records[100:], 100))
    job.discard()  # aborted: its outputs are gone, so are its counts
    assert job.counters["links_out"] == 100 and job.live_quality.figures()["records"] == 100
    assert job.linker_counters["records_linked"] == 100


def test_a_repeat_is_skipped_and_an_unknown_source_dead_lettered_in_the_batch():
    config = LinkageConfig.from_yaml(CONFIG.text + "sources: [febrl4-a, febrl4-b]\n")
    job = new_job()
    job.config = config
    job.assigned({0: {}})
    record = load_febrl("febrl4").records[0]
    odd = {"source": "febrl4-c", "record_id": "1", "fields": record.fields, "event_time": 1}
    batch = messages([record, record]) + [Message(TOPICS.linkage_records, 0, 2, odd)]
    out = run_batch(job, batch)
    job.committed()
    assert [topic for topic, _ in out.produced].count(TOPICS.links) == 1
    letters = [json.loads(value) for topic, value in out.produced if topic == TOPICS.dead_letters]
    assert [letter["error_type"] for letter in letters] == ["UNKNOWN_SOURCE"]
    assert [key for _, key, _ in out.states if key.startswith(RECORD)] == [RECORD + b"febrl4-a|" +
                                                                           record.record_id.encode()]
    assert job.counters["dead_letters"] == 1 and job.linker_counters["duplicate_records"] == 1
