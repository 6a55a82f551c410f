"""Config, normalization, blocking, comparisons, EM, clustering and the batch baseline, one part at a time."""

import random

import pytest

import linkage.blocking
import linkage.clustering
import linkage.comparisons
import linkage.config
import linkage.datasets
import linkage.fellegi_sunter
import linkage.normalize
import linkage.pair_classifier
from linkage.batch_baseline import link_batch
from linkage.blocking import BlockingIndex, blocking_keys
from linkage.clustering import EntityClusters
from linkage.comparisons import compare, compare_field
from linkage.config import Comparison, ConfigError, LinkageConfig
from linkage.datasets import SourceRecord, load_febrl
from linkage.fellegi_sunter import FellegiSunter


def test_bundled_configs_load():
    link, dedupe = LinkageConfig.from_file("febrl"), LinkageConfig.from_file("febrl-dedupe")
    assert (link.mode, link.one_to_one, dedupe.mode) == ("link", True, "dedupe")
    assert [c.field for c in link.comparisons] == [c.field for c in dedupe.comparisons]


def test_config_errors_name_every_problem():
    with pytest.raises(ConfigError) as err:
        LinkageConfig.from_yaml("""
name: bad
fields: {surname: last}
blocking:
  - {name: k, parts: [{field: town, transform: soundex}]}
  - {name: p, parts: [{field: surname, transform: prefix}]}
comparisons:
  - {field: surname, method: cosine}
  - {field: surname, method: jaro_winkler, levels: [0.8, 0.9]}
model: {link_threshold: 1.5}
colour: blue
""")
    text = str(err.value)
    for expected in ["blocking[0].parts[0]: field 'town' is not in fields", "prefix needs a positive length",
                     "comparisons[0].method: must be one of", "highest first", "strictly between 0 and 1",
                     ":11: colour: unknown key"]:
        assert expected in text
    with pytest.raises(ConfigError, match="no linkage config at nowhere.yaml"):
        LinkageConfig.from_file("nowhere.yaml")
    with pytest.raises(ConfigError, match="not valid YAML"):
        LinkageConfig.from_yaml("name: [")


def test_normalization_handles_odd_unicode_and_blanks():
    assert linkage.normalize.normalize_text("Ｊｏｓé\u200b  Müller\t") == "jose muller"
    assert linkage.normalize.normalize_text("\u00a0\u200b") is None
    assert linkage.normalize.normalize_text(4223) == "4223"


def test_each_record_gets_several_blocking_keys():
    config = LinkageConfig.from_file("febrl")
    record = {"given_name": "michaela", "surname": "neumann", "date_of_birth": "19151111", "postcode": "4223",
              "soc_sec_id": "5304218", "suburb": "winston hills"}
    keys = blocking_keys(record, config.blocking)
    assert keys == ["soc_sec_id:5304218", "dob:19151111", "names_sdx:N550|M240", "postcode_surname:4223|n",
                    "suburb_given:W523|m"]
    # a typo in the surname keeps every key that does not use it
    typo = blocking_keys(dict(record, surname="heumann"), config.blocking)
    assert set(keys) & set(typo) == {"soc_sec_id:5304218", "dob:19151111", "suburb_given:W523|m"}


def test_blocking_index_finds_records_sharing_any_key_and_bounds_blocks():
    index = BlockingIndex({}, max_block_size=3)
    index.add("a", ["k1", "k2"])
    index.add("b", ["k2"])
    index.add("c", ["k3"])
    assert index.candidates(["k2", "k3"]) == ["a", "b", "c"]
    assert index.candidates(["k1", "k2"]) == ["a", "b"]  # each record once
    assert index.candidates([]) == []
    for rid in "defg":
        index.add(rid, ["k2"])
    assert index.candidates(["k2"]) == ["e", "f", "g"]


def test_string_comparisons_levels_and_missing_values():
    jw = Comparison("name", "jaro_winkler", (0.95, 0.85))
    assert compare_field("catherine", "catherine", jw) == 2
    assert compare_field("catherine", "katherine", jw) == 1
    assert compare_field("catherine", "bob", jw) == 0
    assert compare_field(None, "bob", jw) is None
    lev = Comparison("street", "levenshtein", (0.9, 0.7))
    assert compare_field("stanley street", "stanley stret", lev) == 2
    token = Comparison("address", "token_set", (0.9,))
    assert compare_field("street stanley", "stanley street", token) == 1
    exact = Comparison("state", "exact")
    assert (compare_field("nsw", "nsw", exact), compare_field("nsw", "vic", exact)) == (1, 0)


def test_dates_and_numbers_are_compared_as_such():
    dob = Comparison("dob", "date", formats=("%Y%m%d", "%d/%m/%Y"))
    assert compare_field("19800201", "01/02/1980", dob) == 2  # same day, two formats
    assert compare_field("19800201", "19800102", dob) == 1  # day and month swapped
    assert compare_field("19800201", "19810201", dob) == 1  # one part differs
    assert compare_field("19800201", "19911225", dob) == 0
    assert compare_field("1980021x", "1980021x", dob) == 2  # unparsable: compared as text
    number = Comparison("street_number", "number", tolerance=2)
    assert compare_field("12", "12.0", number) == 2
    assert compare_field("12", "14", number) == 1
    assert compare_field("12", "40", number) == 0
    assert compare_field("12a", "12a", number) == 2
    assert compare({"dob": "19800201"}, {"dob": None}, [dob, number]) == (None, None)


def test_em_learns_m_and_u_without_labels():
    rng = random.Random(3)
    model = FellegiSunter([3, 3, 2, 2, 2], prior_match=0.5)
    truth = []
    for i in range(20000):
        match = rng.random() < 0.2
        truth.append(match)
        vector = tuple(
            (2 if rng.random() < 0.85 else rng.choice([0, 1])) if match else rng.choice([0, 0, 0, 0, 1, 2])
            for _ in range(2)) + tuple(int(rng.random() < (0.9 if match else 0.05)) for _ in range(3))
        if rng.random() < 0.1:
            vector = (None,) + vector[1:]
        model.observe(vector)
    model.fit()
    assert abs(model.prior_match - 0.2) < 0.02
    assert abs(model.m[2][1] - 0.9) < 0.03 and abs(model.u[2][1] - 0.05) < 0.02
    assert model.weight((2, 2, 1, 1, 1)) > 10 > -10 > model.weight((0, 0, 0, 0, 0))
    restored = FellegiSunter.from_state(model.state())
    assert restored.weight((2, None, 1, 0, 1)) == model.weight((2, None, 1, 0, 1))
    assert restored.n_observed == 20000


def test_clustering_keeps_ids_stable_and_announces_merges():
    clusters = EntityClusters()
    (a,) = clusters.add("a", [])
    clusters.add("b", ["a"])
    clusters.add("x", [])
    clusters.add("y", ["x"])
    clusters.add("z", ["y"])
    (merge,) = clusters.add("c", ["b", "z"])
    # the larger entity (x, y, z) absorbs the other; its id does not change
    assert merge["change"] == "MERGED"
    survivor = clusters.entity_of("x")
    assert merge["entity_id"] == survivor and merge["merged_from"] == [a["entity_id"]]
    assert sorted(merge["record_keys"]) == ["a", "b", "c", "x", "y", "z"]
    assert {clusters.entity_of(k) for k in "abcxyz"} == {survivor} and len(clusters) == 1
    # replaying the same feed into fresh state gives the same ids
    again = EntityClusters()
    assert again.add("a", [])[0]["entity_id"] == a["entity_id"]


def test_batch_baseline_on_too_few_records_says_so_or_links_nothing():
    config = LinkageConfig.from_file("febrl")
    records = load_febrl("febrl4").records
    one_source = [r for r in records[:50] if r.source == records[0].source]
    with pytest.raises(ConfigError, match="exactly two sources"):
        link_batch(config, one_source)
    a, b = (next(r for r in records if r.source == s) for s in sorted({r.source for r in records}))
    strangers = [a, SourceRecord(b.source, b.record_id, {"surname": "zzyzx"})]  # no blocking key shared
    result = link_batch(config, strangers)
    assert result["linked_pairs"] == result["candidate_pairs"] == set()
