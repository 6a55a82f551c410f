"""A build's exact offset ranges: train, reproduce byte for byte from the lineage alone, after the topic grew."""

from __future__ import annotations

import dataclasses
import time

import pytest

from mlstream.registry import builds
from apps.lineage_service.service import LineageService
from tools.lineage_views import atlas_client
from mlstream.kafka.reader import read_range
from mlstream.kafka.topics import init
from producers.datasets import examples, source_name
from producers.feed import KafkaFeedSink, play
from tests.conftest import free_port

pytestmark = pytest.mark.integration


def feed(settings, n: int, seed: int) -> None:
    play(examples("sea-drift", seed=seed), KafkaFeedSink(settings), dataset="sea-drift",
         source=source_name("sea-drift"), seed=seed, label_delay_s=0.0, limit=n, progress=lambda line: None)


def test_build_is_retraced_and_reproduced_byte_for_byte(isolated, tmp_path):
    settings = dataclasses.replace(isolated, lineage_port=free_port())
    init(settings, say=lambda line: None)
    service = LineageService(settings, database=str(tmp_path / "lineage.db")).start()
    try:
        feed(settings, 300, seed=1)
        manifest = builds.run_build(settings, model="sea", spec="logistic_regression", version=1,
                                    say=lambda line: None)
        assert [s.name for s in manifest.splits] == ["train", "validation", "test"]
        assert sum(s.examples for s in manifest.splits) == 300
        assert manifest.schema_versions == {f"{settings.topics.records}-value": [1],
                                            f"{settings.topics.labels}-value": [1]}
        assert manifest.code_version != "unknown" and set(manifest.metrics) == {"validation_accuracy",
                                                                                 "test_accuracy"}
        # Ranges are consecutive and cover each partition once.
        for partition in {r.partition for s in manifest.splits for r in s.records}:
            ranges = [r for s in manifest.splits for r in s.records if r.partition == partition]
            assert all(a.end == b.start for a, b in zip(ranges, ranges[1:]))

        feed(settings, 100, seed=2)  # the topics move on; the build's ranges do not

        client = atlas_client(settings)
        deadline = time.monotonic() + 30
        while True:
            try:
                found = builds.manifest_from_lineage(client, "sea/1", settings.atlas_namespace)
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)
        assert found == manifest
        report = builds.reproduce(settings, found, tmp_path / "out")
        assert all(r["matches"] for files in report.values() for r in files.values())

        train = manifest.split("train")
        raw = []
        for r in train.records:
            raw += sorted(read_range(settings.bootstrap_servers, r.topic, {r.partition: r.start},
                                     {r.partition: r.end}), key=lambda m: m.offset())
        assert (tmp_path / "out" / "train" / "records.bin").read_bytes() == builds.frames([m.value() for m in raw])
        assert len((tmp_path / "out" / "train" / "order.txt").read_text().splitlines()) == train.examples

        build = client.entity.get_entity_by_attribute(
            "ml_model_build", {"qualifiedName": "crn:mlstream:ml:local:model/sea/build/1"}).entity
        upstream = client.lineage.get_lineage_info(build.guid, "INPUT", 1)
        names = {h.attributes["qualifiedName"] for h in upstream.guidEntityMap.values()}
        assert {f"{settings.topics.records}@primary", f"{settings.topics.labels}@primary"} <= names
    finally:
        service.stop()
