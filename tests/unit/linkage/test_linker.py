"""The linker end to end without Kafka: FEBRL linking and deduplication, another layout, bad input."""


import pytest

from linkage.config import LinkageConfig
from linkage.datasets import load_csv, load_febrl
from linkage.evaluation import LiveQuality, quality
from linkage.linker import (BLANK_RECORD_ID, DUPLICATE_RECORD, EMPTY_RECORD, UNKNOWN_SOURCE,
                            Linker, LinkerState)
from tests.people_csv import PEOPLE_CONFIG, write_people_csvs


def run(config, records):
    linker = Linker(config, "test", LinkerState.in_memory())
    events = [linker.process(r.source, r.record_id, r.fields).event for r in records]
    return linker, events


def test_febrl4_subset_links_across_sources():
    data = load_febrl("febrl4")
    records = data.records[:3000]
    keys = {r.key for r in records}
    truth = {p for p in data.true_pairs if p <= keys}
    linker, events = run(LinkageConfig.from_file("febrl"), records)
    figures = quality(events, truth, mode="link", possible_pairs=1500 * 1500)
    assert figures["pairs_completeness"] > 0.99 and figures["reduction_ratio"] > 0.99
    assert figures["precision"] > 0.99 and figures["recall"] > 0.98
    assert linker.model.n_fits >= 1
    # one to one: no entity holds two records of one source
    for entity_id in {linker.clusters.entity_of(k) for k in linker.state.records}:
        sources = [k.split("|")[0] for k in linker.clusters.records_of(entity_id)]
        assert len(sources) == len(set(sources))


def test_febrl1_deduplicates_through_config_only():
    data = load_febrl("febrl1")
    _, events = run(LinkageConfig.from_file("febrl-dedupe"), data.records)
    figures = quality(events, data.true_pairs, mode="dedupe", possible_pairs=data.possible_pairs())
    assert figures["f1"] > 0.98 and figures["pairs_completeness"] > 0.98


def test_another_field_layout_links_through_its_own_config(tmp_path):
    """Two CSV exports with other column names and date formats, from FEBRL people with typos."""
    crm, billing, truth = write_people_csvs(tmp_path, 400)
    records = [r for pair in zip(load_csv(crm, "crm", "Id"), load_csv(billing, "billing", "Id")) for r in pair]
    _, events = run(LinkageConfig.from_yaml(PEOPLE_CONFIG), records)
    figures = quality(events, truth, mode="link", possible_pairs=400 * 400)
    assert figures["recall"] > 0.97 and figures["precision"] > 0.97


def test_bad_input_is_counted_and_never_raises():
    config = LinkageConfig.from_yaml(PEOPLE_CONFIG)
    linker = Linker(config, "test", LinkerState.in_memory())
    good = {"FirstName": "Ana", "LastName": "Lima", "BirthDate": "01.02.1980", "Zip": "4000", "Phone": "123"}
    assert linker.process("crm", "1", good).event is not None
    assert linker.process("crm", "1", good).rejected == DUPLICATE_RECORD
    assert linker.process("erp", "9", good).rejected == UNKNOWN_SOURCE
    assert linker.process("crm", "2", {"FirstName": "  ", "Other": "x"}).rejected == EMPTY_RECORD
    odd = linker.process("billing", "1", {"FirstName": "ＡＮＡ\u200b", "LastName": "Líma", "BirthDate": "1980-02-01",
                                           "Zip": None, "Phone": "not a number"})
    assert odd.event["candidates"][0]["linked"] and odd.missing_fields == 1
    sparse = linker.process("billing", "2", {"Zip": "4000"})  # no blocking key at all: its own entity
    assert sparse.event["candidates"] == [] and sparse.entity_updates[0]["change"] == "CREATED"
    assert linker.counters["duplicate_records"] == linker.counters["unknown_source"] == 1
    assert linker.counters["empty_records"] == linker.counters["records_without_blocking_keys"] == 1


@pytest.mark.parametrize("blank", ["", " ", "\t\n"])
def test_a_blank_record_id_is_rejected_never_taken_as_an_id(blank):
    config = LinkageConfig.from_yaml(PEOPLE_CONFIG)
    linker = Linker(config, "test", LinkerState.in_memory())
    person = {"FirstName": "Ana", "LastName": "Lima", "BirthDate": "01.02.1980", "Zip": "4000", "Phone": "123"}
    assert linker.process("crm", blank, person).rejected == BLANK_RECORD_ID
    # Not stored: a second blank id is rejected for the same reason, not dropped as a duplicate.
    assert linker.process("crm", blank, dict(person, FirstName="Bo")).rejected == BLANK_RECORD_ID
    assert not linker.state.records and linker.counters["blank_record_ids"] == 2
    assert linker.counters["duplicate_records"] == 0


def test_state_in_plain_mappings_lets_a_new_linker_continue():
    """What the app gets from its state changelog after a restart: the same decisions, the same refits."""
    records = load_febrl("febrl4").records[:3000]
    config = LinkageConfig.from_file("febrl")
    state = LinkerState.in_memory()
    first = Linker(config, "test", state)
    for r in records[:2000]:
        first.process(r.source, r.record_id, r.fields)
    first.save_models()
    second = Linker(config, "test", state)
    assert second.model.n_fits == first.model.n_fits >= 1
    assert second.model.n_observed == first.model.n_observed  # the pairs since the last fit too
    resumed = [second.process(r.source, r.record_id, r.fields).event for r in records[2000:]]
    _, uninterrupted = run(config, records)

    def decisions(events):
        return [(e["entity_id"], [(c["record_id"], c["linked"]) for c in e["candidates"]]) for e in events]

    assert decisions(resumed) == decisions(uninterrupted[2000:])
    assert sum(c["linked"] for e in resumed for c in e["candidates"]) > 100


@pytest.mark.parametrize("dataset, config_name, n", [("febrl4", "febrl", 2000), ("febrl3", "febrl-dedupe", 1500)])
def test_live_quality_ends_where_the_batch_figures_are(dataset, config_name, n):
    data = load_febrl(dataset)
    records = data.records[:n]
    config = LinkageConfig.from_file(config_name)
    _, events = run(config, records)
    live = LiveQuality(config.mode)
    halfway = None
    for i, (record, event) in enumerate(zip(records, events)):
        live.add(event, config.truth.entity(record.record_id, record.fields))
        if i == n // 2:
            halfway = live.figures()
    keys = {r.key for r in records}
    truth = {p for p in data.true_pairs if p <= keys}
    sources = {}
    for r in records:
        sources[r.source] = sources.get(r.source, 0) + 1
    possible = (n * (n - 1) // 2 if config.mode == "dedupe"
                else sources[records[0].source] * (n - sources[records[0].source]))
    expected = quality(events, truth, mode=config.mode, possible_pairs=possible)
    final = live.figures()
    assert final["possible_pairs"] == possible and final["true_pairs"] == len(truth) > 100
    for name in ("candidate_pairs", "pairs_completeness", "reduction_ratio", "linked_pairs", "true_positives",
                 "precision", "recall", "f1"):
        assert final[name] == pytest.approx(expected[name]), name
    assert 0 < halfway["true_pairs"] < final["true_pairs"] and halfway["f1"] > 0.9


def test_a_classifier_learns_from_confirmed_pairs_then_shares_the_decisions_and_survives_a_restart():
    data = load_febrl("febrl4")
    config = LinkageConfig.from_yaml(LinkageConfig.from_file("febrl").text
                                     + "classifier: {min_confirmed: 200, weight: 0.5}\n")
    truth = config.truth
    state = LinkerState.in_memory()
    linker = Linker(config, "test", state)
    reviewed = 0
    for r in data.records[:3000]:
        event = linker.process(r.source, r.record_id, r.fields).event
        for c in event["candidates"][:2]:  # a reviewer looks at some candidates of every record
            match = truth.entity(r.record_id, {}) == truth.entity(c["record_id"], {})
            assert linker.confirm(f"{c['source']}|{c['record_id']}", f"{r.source}|{r.record_id}", match) is None
            reviewed += 1
    assert linker.classifier.ready and linker.classifier.n_learned == reviewed > 500
    assert linker.classifier.accuracy.get() > 0.98
    assert linker.confirm("febrl4-a|nope", "febrl4-b|rec-1-dup-0", True) == "UNKNOWN_RECORD"

    linker.save_models()
    restarted = Linker(config, "test", state)
    assert restarted.classifier.n_learned == reviewed  # saved at the commit point: nothing forgotten, nothing twice
    records = data.records[:4000]
    events = [restarted.process(r.source, r.record_id, r.fields).event for r in records[3000:]]
    keys = {r.key for r in records[3000:]}
    blended = [c["match_probability"] for e in events for c in e["candidates"]]
    assert blended and min(blended) >= 0 and max(blended) <= 1
    seen = {r.key for r in records}
    truth_pairs = {p for p in data.true_pairs if p <= seen and p & keys}
    linked = {frozenset((f"{e['source']}|{e['record_id']}", f"{c['source']}|{c['record_id']}"))
              for e in events for c in e["candidates"] if c["linked"]}
    assert len(linked & truth_pairs) / len(linked) > 0.99 and len(linked & truth_pairs) / len(truth_pairs) > 0.97

    plain = Linker(LinkageConfig.from_file("febrl"), "test", LinkerState.in_memory())
    assert plain.confirm("a|1", "b|1", True) == "NO_CLASSIFIER"
