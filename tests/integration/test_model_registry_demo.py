"""`mlstream demo rollback` end to end: the bad build is detected by the app's alert and rolled back automatically."""

from __future__ import annotations

from collections import Counter
import dataclasses

import pytest

from mlstream.kafka.clients import registry_client
from mlstream.kafka.reader import read_all
from mlstream.kafka.topics import topic_codec
from mlstream.settings import Topics
from tests.conftest import isolated_settings
from tools.demo_rollback import run_rollback_demo

pytestmark = pytest.mark.integration


def demo_settings_of(services, summary):
    """Settings that see the topics the demo used (it makes its own prefix)."""
    return dataclasses.replace(services, topics=Topics(prefix=summary["topic_prefix"]))


@pytest.mark.timeout(600)  # about 30 s alone; the app's start and catch-up slow down on a loaded 2-core machine
def test_the_rollback_story_runs_and_its_numbers_show_detection_and_rollback(services, tmp_path, capsys):
    summary = run_rollback_demo(isolated_settings(services, tmp_path / "state"), rate=250.0,
                                start_services=False)  # the session's services run already
    settings = demo_settings_of(services, summary)
    before, during, after_rollback, after_fix = summary["phases"]
    assert (before["build"], during["build"], after_rollback["build"], after_fix["build"]) == \
        ("sea/1", "sea/2", "sea/1", "sea/3")
    assert all(p["predictions"] > 0 for p in summary["phases"])
    assert during["accuracy"] < before["accuracy"] - 0.2  # the bad build was bad, live
    assert after_rollback["accuracy"] > during["accuracy"] + 0.2 and after_fix["accuracy"] > during["accuracy"] + 0.2
    assert summary["alert"]["alert_type"] == "METRIC_BELOW_THRESHOLD" and summary["rollback"] == "automatic"
    assert summary["records_affected"] == during["predictions"]
    assert summary["time_to_detect_ms"] > 0 and summary["time_to_roll_back_ms"] >= 0
    assert summary["builds"]["sea/3"]["parent"] == "2"
    assert sum(p["predictions"] for p in summary["phases"]) == summary["records_streamed"]
    # None lost, none scored twice, across four swaps: one prediction per record, by its id.
    registry = registry_client(settings)
    records = topic_codec(registry, settings, settings.topics.records)
    predictions = topic_codec(registry, settings, settings.topics.predictions)
    record_ids = [records.decode(m.value())["id"] for m in read_all(settings, settings.topics.records)]
    predicted = Counter(predictions.decode(m.value())["record_id"]
                        for m in read_all(settings, settings.topics.predictions))
    assert len(record_ids) > summary["records_streamed"] and set(predicted) == set(record_ids)  # training + live
    assert set(predicted.values()) == {1}
    assert "time to roll back" in capsys.readouterr().out
