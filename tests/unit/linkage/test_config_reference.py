"""The linkage config reference: the JSON Schema at every level, the reference page's example,
the "Last, First" field transform, the year blocking transform's date format, true pairs from a file."""

import re

import pytest

import tools.bench.linkage_eval as linkage_eval
from apps.linker.settings import LinkageSettings
from linkage.blocking import blocking_keys
from linkage.config import CONFIG_DIR, BlockingKey, ConfigError, KeyPart, LinkageConfig, config_schema
from linkage.datasets import csv_dataset, read_truth_pairs
from linkage.normalize import last_first, normalize_record
from mlstream.settings import REPO_ROOT, Settings

REFERENCE = REPO_ROOT / "docs" / "linkage-config.md"
BASE = """\
name: people
mode: dedupe
fields: {surname: last_name, dob: birth_date}
blocking:
  - name: sdx
    parts: [{field: surname, transform: soundex}]
comparisons:
  - {field: surname, method: jaro_winkler, levels: [0.95, 0.85]}
  - {field: dob, method: date, formats: ["%Y-%m-%d"]}
"""


def problems(text: str) -> str:
    with pytest.raises(ConfigError) as raised:
        LinkageConfig.from_yaml(text, "people.yaml")
    return str(raised.value)


def test_a_typo_inside_a_comparison_is_refused_with_its_path():
    text = problems(BASE.replace("levels: [0.95", "levls: [0.95"))
    assert "people.yaml:8: comparisons[0].levls: unknown key (allowed: field, formats, levels, method, tolerance)" \
        in text


def test_a_typo_inside_a_blocking_part_is_refused_with_its_path():
    text = problems(BASE.replace("transform: soundex", "transfrom: soundex"))
    assert "people.yaml:6: blocking[0].parts[0].transfrom: unknown key (allowed: field, format, length, transform)" \
        in text


def test_keys_where_they_do_nothing_are_refused():
    text = problems(BASE.replace("levels: [0.95, 0.85]", 'formats: ["%Y"]')
                    .replace('formats: ["%Y-%m-%d"]', "tolerance: 2")
                    .replace("transform: soundex", "transform: soundex, length: 3"))
    assert "people.yaml:6: blocking[0].parts[0].length: only for transform prefix" in text
    assert "people.yaml:8: comparisons[0].formats: only for method date" in text
    assert "people.yaml:9: comparisons[1].tolerance: only for method number" in text
    text = problems(BASE.replace('formats: ["%Y-%m-%d"]', "levels: [0.9]"))
    assert "comparisons[1].levels: only for string methods" in text


def test_nested_settings_and_types_are_checked_too():
    text = problems(BASE + "model: {em: {iteratons: 5}}\nclassifier: {weight: 2}\nmax_block_size: many\n")
    assert "model.em.iteratons: unknown key" in text
    assert "classifier.weight: must be in (0, 1]" in text
    assert "max_block_size: must be a positive integer" in text


def schema_keys(schema: dict, defs: dict):
    """Every key the schema names, at every level."""
    schema = defs.get(schema.get("$ref", "").removeprefix("#/$defs/"), schema)
    for key, sub in schema.get("properties", {}).items():
        yield key
        yield from schema_keys(sub, defs)
    for nested in ("items", "additionalProperties"):
        if isinstance(schema.get(nested), dict):
            yield from schema_keys(schema[nested], defs)


def test_bundled_configs_and_the_reference_example_validate():
    for path in CONFIG_DIR.glob("*.yaml"):
        LinkageConfig.from_file(path)
    page = REFERENCE.read_text()
    example = re.search(r"```yaml\n(.*?)```", page, re.S).group(1)
    config = LinkageConfig.from_yaml(example, str(REFERENCE))
    assert config.field_transforms == {"full_name": "last_first"}
    assert [p.format for k in config.blocking for p in k.parts if p.transform == "year"] == ["%d/%m/%Y"]
    schema = config_schema()
    undescribed = {key for key in schema_keys(schema, schema["$defs"]) if f"`{key}`" not in page}
    assert not undescribed  # the page describes every key


def test_last_first_reorders_names_before_normalizing():
    assert last_first("Smith, John") == "John Smith"
    assert last_first("John Smith") == "John Smith"
    config = LinkageConfig.from_yaml(BASE.replace("surname: last_name", "surname: {column: name, transform: last_first}"))
    assert config.fields["surname"] == "name" and config.field_transforms == {"surname": "last_first"}
    assert normalize_record({"name": "O'Neill,  Zoë"}, config)["surname"] == "zoe o neill"
    assert normalize_record({"name": "Zoë O'Neill"}, config)["surname"] == "zoe o neill"
    assert "fields.surname.transform" in problems(BASE.replace("surname: last_name",
                                                                "surname: {column: name, transform: first_last}"))


def test_year_reads_the_configured_date_format():
    us, iso = (BlockingKey("born", (KeyPart("dob", "year", format=fmt),)) for fmt in ("%m/%d/%Y", "%Y-%m-%d"))
    assert blocking_keys({"dob": "04 03 1980"}, [us]) == ["born:1980"]
    assert blocking_keys({"dob": "1980 04 03"}, [iso]) == ["born:1980"]
    assert blocking_keys({"dob": "04 03 80"}, [us]) == []  # not in its format: no key, not a wrong one
    assert "blocking[0].parts[0]: year needs a date format" in problems(
        BASE.replace("{field: surname, transform: soundex}", "{field: dob, transform: year}"))
    assert "blocking[0].parts[0].format: only for transform year" in problems(
        BASE.replace("transform: soundex", 'transform: soundex, format: "%Y"'))


def test_truth_pairs_file(tmp_path):
    good = tmp_path / "pairs.csv"
    good.write_text("source_a,record_id_a,source_b,record_id_b\ncrm,1,billing,7\nbilling,7,crm,1\ncrm,2,crm,3\n")
    assert read_truth_pairs(good) == {frozenset(("crm|1", "billing|7")), frozenset(("crm|2", "crm|3"))}
    (tmp_path / "crm.csv").write_text("id,last_name,birth_date\n1,smith,1980-01-02\n2,jones,1970-03-04\n"
                                      "3,jones,1970-03-04\n")
    config = LinkageConfig.from_yaml(BASE)  # no truth key: the file gives the pairs
    data = csv_dataset([(tmp_path / "crm.csv", "crm", "id")], config, read_truth_pairs(good))
    assert data.true_pairs == {frozenset(("crm|2", "crm|3"))}  # billing's records are not judged here
    bad_header = tmp_path / "header.csv"
    bad_header.write_text("a,b\n1,2\n")
    with pytest.raises(ConfigError, match="needs the header source_a,record_id_a,source_b,record_id_b"):
        read_truth_pairs(bad_header)
    blank = tmp_path / "blank.csv"
    blank.write_text("source_a,record_id_a,source_b,record_id_b\ncrm,1,,7\n")
    with pytest.raises(ConfigError, match=r"blank.csv:2: every column"):
        read_truth_pairs(blank)
    with pytest.raises(ConfigError, match="no truth pairs file"):
        read_truth_pairs(tmp_path / "nowhere.csv")
    with pytest.raises(ConfigError, match="--truth-pairs"):
        csv_dataset([(tmp_path / "crm.csv", "crm", "id")], config)


class Stop(Exception):
    pass


def stop(*args, **kwargs):
    raise Stop


def test_eval_warns_when_the_truth_gives_no_true_pairs(tmp_path, monkeypatch):
    """The warning comes before any pass starts; the first pass is stopped right there."""
    monkeypatch.setattr(linkage_eval, "throughput_pass", stop)
    monkeypatch.setattr(linkage_eval.Run, "delete_topics_and_subjects", lambda self: None)
    (tmp_path / "crm.csv").write_text("id,last_name,birth_date\n1,smith,1980-01-02\n")
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("source_a,record_id_a,source_b,record_id_b\nother,1,other,2\n")
    config = tmp_path / "people.yaml"
    config.write_text(BASE)
    said = []
    with pytest.raises(Stop):
        linkage_eval.run_eval(Settings.from_env(), LinkageSettings.from_env(), dataset="febrl4", config_spec=str(config),
                 records=None, latency_rate=0, latency_records=None, csv_files=[(tmp_path / "crm.csv", "crm", "id")],
                 truth_pairs_file=pairs, say=said.append)
    assert any(line.startswith("warning: the truth gives no true pairs") and "pairs.csv" in line for line in said)
