"""The linkage feed's pacing, config look-up, and the lineage messages, without Kafka."""

from types import SimpleNamespace

import pytest

from apps.linker.lineage import feed_notification, linkage_app_notification
from apps.linker.settings import load_config
from linkage.config import ConfigError, LinkageConfig
from linkage.datasets import SourceRecord, interleave, load_febrl
from mlstream.kafka.serde import schema_text
from mlstream.lineage.typesystem import TypeSystem
from mlstream.settings import Settings
from producers.linkage_feed import ListSink, play_records

SCHEMAS = {"linkage.records-value": "linkage_record", "linkage.links-value": "link_event",
           "linkage.entities-value": "entity_update", "deadletters-value": "dead_letter"}


class SchemasOnFile:
    """Answers get_latest_version from schemas/ (version 1), like a registry after `mlstream init`."""

    def get_latest_version(self, subject):
        name = next(schema for suffix, schema in SCHEMAS.items() if subject.endswith(suffix))
        return SimpleNamespace(version=1, schema=SimpleNamespace(schema_str=schema_text(name)))


def test_feed_paces_records_and_interleaves_sources():
    now = [0.0]
    sink = ListSink()
    records = interleave([SourceRecord("a", str(i), {}) for i in range(3)],
                         [SourceRecord("b", str(i), {}) for i in range(2)])
    stats = play_records(records, sink, rate=10, progress=lambda line: None, clock=lambda: now[0],
                         sleep=lambda s: now.__setitem__(0, now[0] + s), wall_ms=lambda: int(now[0] * 1000))
    assert [r["source"] + r["record_id"] for r in sink.records] == ["a0", "b0", "a1", "b1", "a2"]
    assert [r["event_time"] for r in sink.records] == [0, 100, 200, 300, 400]
    assert stats.records == 5


def test_febrl_datasets_load_with_their_true_pairs():
    febrl4 = load_febrl("febrl4")
    assert len(febrl4.records) == 10_000 and len(febrl4.true_pairs) == 5_000
    assert febrl4.possible_pairs() == 25_000_000 and febrl4.records[1].source == "febrl4-b"
    head = febrl4.head(100)
    assert all(p <= {r.key for r in head.records} for p in head.true_pairs)


def test_config_from_a_file_is_versioned_by_its_hash(tmp_path):
    settings = Settings.from_env()
    config, version = load_config("febrl", settings)
    assert config.name == "febrl" and version.startswith("file:")
    path = tmp_path / "mine.yaml"
    path.write_text(config.text.replace("link_threshold: 0.9", "link_threshold: 0.8"))
    other, other_version = load_config(str(path), settings)
    assert other.model.link_threshold == 0.8 and other_version != version
    with pytest.raises(ConfigError, match="must be a number"):
        load_config("registry:febrl@latest", settings)


def test_lineage_names_the_feed_the_process_its_config_version_and_the_link_topics():
    settings = Settings.from_env()
    types = TypeSystem.load()
    config = LinkageConfig.from_file("febrl")
    app = linkage_app_notification(settings, "mlstream-linkage", SchemasOnFile(), config, "7", started_at_ms=1)
    feed = feed_notification(settings, SchemasOnFile(), "febrl4", "FEBRL 4")
    for notification in (app, feed):
        assert types.validate_notification(notification) == []
    (process,) = app["entities"]["entities"]
    assert process["attributes"]["modelName"] == "linkage:febrl" and process["attributes"]["modelVersion"] == "7"
    referred = {e["guid"]: e["attributes"]["qualifiedName"] for e in app["entities"]["referredEntities"].values()}
    outputs = {referred[r["guid"]] for r in process["relationshipAttributes"]["outputs"]}
    assert outputs == {f"{t}@primary" for t in (settings.topics.links, settings.topics.entity_updates,
                                                settings.topics.dead_letters)}
    (feed_process,) = feed["entities"]["entities"]
    assert feed_process["typeName"] == "Process"
    assert feed_process["attributes"]["qualifiedName"] == "linkage-feed:febrl4@primary"
