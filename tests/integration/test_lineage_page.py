"""The lineage page (/lineage/) in a real headless Chromium: the demo's graph from source dataset to
predictions, a click that adds an entity's neighbours, deleted entities greyed; a screenshot is kept in
test-artifacts/."""

from __future__ import annotations

import dataclasses
import time

import pytest
import requests

from apps.lineage_service.service import LineageService
from apps.scorer.lineage import LineageReporter
from mlstream.config_store import SchemaRegistryConfigStore
from mlstream.kafka.clients import registry_client
from mlstream.kafka.topics import init
from mlstream.lineage import entities as e
from mlstream.lineage.feeds import FeedLineage
from mlstream.lineage.hook import entity_create_v2, entity_delete_v2
from mlstream.lineage.spool import lineage_emitter
from mlstream.settings import REPO_ROOT
from producers.datasets import source_name
from tests.conftest import free_port, infra_script
from tests.devtools import Browser
from tools.demo import wait_for
from tools.lineage_demo import demo_lineage_yaml

pytestmark = pytest.mark.integration
ARTIFACTS = REPO_ROOT / "test-artifacts"


@pytest.fixture(scope="module")
def chromium():
    return infra_script("chromium.sh", 900)


def test_the_page_draws_the_demo_graph_expands_on_click_and_greys_deleted_entities(isolated, chromium, tmp_path):
    settings = dataclasses.replace(isolated, lineage_port=free_port())
    init(settings, say=lambda line: None)
    service = LineageService(settings, database=str(tmp_path / "lineage.db")).start()
    try:
        # What 'mlstream demo' reports: the lineage config, the feed, the app (with the model build it serves).
        registry = registry_client(settings)
        SchemaRegistryConfigStore(registry, settings.topics.prefix).put("lineage", demo_lineage_yaml(settings))
        FeedLineage(settings, source=source_name("phishing"), seed=42, started_at_ms=1,
                    warn=lambda line: None).start()
        assert LineageReporter(settings, registry).poll() is True
        # ...and an app that once wrote the predictions, since retired: deleted, still in the lineage.
        topic = {t: e.object_id("kafka_topic", f"{t}@primary") for t in (settings.topics.records,
                                                                          settings.topics.predictions)}
        retired = e.stream_process("retired-scorer", [topic[settings.topics.records]],
                                   [topic[settings.topics.predictions]], model_name="old", model_version="0", guid="-1")
        emitter = lineage_emitter(settings, key="test")
        emitter.emit(entity_create_v2([retired], user="test"))
        emitter.emit(entity_delete_v2([e.object_id(retired["typeName"], "retired-scorer@primary")], user="test"))
        emitter.flush()
        wait_for(lambda: service.graph.find("retired-scorer@primary") and
                 service.graph.find("retired-scorer@primary")[0]["status"] == "DELETED", 60,
                 "the lineage service to apply the hook messages", poll_s=0.2)
        assert service.graph.rejected() == []
        predictions = service.graph.guid_of("kafka_topic", f"{settings.topics.predictions}@primary")
        records = service.graph.guid_of("kafka_topic", f"{settings.topics.records}@primary")
        assert requests.get(f"{service.url}/lineage/vendor/cytoscape.LICENSE", timeout=10).text.startswith("Copyright")

        with Browser(chromium, tmp_path / "profile") as browser:
            page = browser.open(f"{service.url}/lineage/?guid={predictions}")
            page.wait_for("document.getElementById('graph').dataset.base !== ''")
            drawn = page.evaluate("JSON.parse(document.getElementById('graph').dataset.labels)")
            source = f"{source_name('phishing')}@primary"
            assert {source, f"{settings.topics.records}@primary", f"{settings.app_id}@primary",
                    f"{settings.topics.predictions}@primary", "retired-scorer@primary"} <= set(drawn)
            assert f"{source_name('phishing')}->{settings.topics.records}@primary" in drawn  # the feed process
            # Left to right: the source dataset in the first column, the predictions in the last.
            columns = page.evaluate(
                "Object.fromEntries(lineage.cy.nodes().map(n => [lineage.known.get(n.id()).attributes.qualifiedName,"
                " Math.round(n.position().x)]))")
            assert columns[source] == min(columns.values())
            assert columns[f"{settings.topics.predictions}@primary"] == max(columns.values())
            deleted = page.evaluate("lineage.cy.nodes('.deleted').map(n => [lineage.known.get(n.id()).status, "
                                    "n.style('background-color'), n.style('border-style')])")
            assert deleted == [["DELETED", "rgb(238,238,238)", "dashed"]]
            before = page.evaluate("lineage.cy.nodes().length")
            builds = page.evaluate("lineage.cy.nodes().filter(n => lineage.known.get(n.id()).typeName === "
                                   "'ml_model_build').length")

            # A real click on the records topic: its other readers (the build's training) join the graph.
            x, y = page.evaluate(f"(() => {{ const box = document.getElementById('graph').getBoundingClientRect();"
                                 f" const p = lineage.cy.getElementById('{records}').renderedPosition();"
                                 f" return [box.left + p.x, box.top + p.y]; }})()")
            page.click(x, y)
            page.wait_for(f"lineage.expanded.has('{records}') && lineage.cy.nodes().length > {before}")
            after = page.evaluate("lineage.cy.nodes().map(n => lineage.known.get(n.id()).typeName)")
            assert "ml_model_train_build_process" in after and after.count("ml_model_build") >= builds
            assert page.evaluate("document.getElementById('details').textContent").count(
                f"{settings.topics.records}@primary") == 1
            time.sleep(0.5)  # the layout's last frame
            screenshot = page.screenshot(ARTIFACTS / "lineage.png")

            search = browser.open(f"{service.url}/lineage/?q={settings.topics.predictions}")
            search.wait_for(f"document.getElementById('graph').dataset.base === '{predictions}'")
            assert int(search.evaluate("document.getElementById('results').dataset.results")) >= 1
    finally:
        service.stop()
    assert screenshot.exists() and screenshot.stat().st_size > 20_000
