"""The stream app's lineage: reported at start, again for each new lineage config version in the registry."""

from __future__ import annotations

import dataclasses

import pytest

from apps.lineage_service.service import LineageService
from apps.scorer.lineage import LINEAGE_CONFIG, LineageReporter
from mlstream.config_store import SchemaRegistryConfigStore
from mlstream.kafka.clients import registry_client
from mlstream.kafka.topics import init
from tests.conftest import free_port
from tools.demo import wait_for

pytestmark = pytest.mark.integration


def test_lineage_follows_the_config_in_the_registry(isolated, tmp_path):
    settings = dataclasses.replace(isolated, lineage_port=free_port())
    init(settings, say=lambda line: None)
    service = LineageService(settings, database=str(tmp_path / "lineage.db")).start()
    try:
        registry = registry_client(settings)
        store = SchemaRegistryConfigStore(registry, settings.topics.prefix)
        reporter = LineageReporter(settings, registry)
        graph = service.graph
        process_qn = f"{settings.app_id}@{settings.atlas_namespace}"

        assert reporter.poll() is True  # no config yet: the app's own lineage
        wait_for(lambda: graph.find(process_qn), 30, "the lineage service to apply it", poll_s=0.2)
        assert reporter.poll() is False

        records = settings.topics.records
        store.put(LINEAGE_CONFIG, f"""{settings.model}:
  owner: alice
  kafka_topics: [{{topic: {records}, version: 1}}]
  hive_table_qualified_names: ["default.history@cm"]
  features: [a, b]
  splits: {{train: 0.8, test: 0.2}}
""")
        assert reporter.poll() is True  # the new version, without a restart
        build_qn = f"crn:mlstream:ml:local:model/{settings.model}/build/{settings.model_version}"

        def upstream_names() -> set[str]:
            upstream = graph.lineage(graph.find(process_qn)[0]["guid"], "INPUT", 3)
            return {h["attributes"]["qualifiedName"] for h in upstream["guidEntityMap"].values()}

        # The build and the process's new inputs may be applied from separate notifications: wait
        # for the process to name the build (on a loaded machine the second one can lag).
        wait_for(lambda: build_qn in upstream_names(), 30, "the lineage service to apply it", poll_s=0.2)
        build = graph.find(build_qn)[0]
        names = upstream_names()
        assert {build_qn, "default.history@cm", f"{records}@primary", f"{build_qn}/train"} <= names
        assert graph.entity(build["guid"])["entity"]["attributes"]["metadata"]["owner"] == "alice"
        deployment_qn = f"crn:mlstream:ml:local:model/{settings.model}/deployment/{settings.app_id}"
        wait_for(lambda: graph.find(deployment_qn), 30, "the lineage service to apply it", poll_s=0.2)
        deployment = graph.entity(graph.find(deployment_qn)[0]["guid"])["entity"]
        assert deployment["attributes"]["status"] == "deployed"
        assert deployment["relationshipAttributes"]["build"]["guid"] == build["guid"]

        store.put(LINEAGE_CONFIG, f"{settings.model}:\n  kafka_topics: [{{topic: no.such.topic}}]\n")
        assert reporter.poll() is True  # a bad config: logged; the app's own lineage still goes out
        assert reporter.config_version == 2
        assert graph.rejected() == []
    finally:
        service.stop()


def test_a_registry_that_is_down_does_not_raise_and_is_retried(isolated):
    class Recording(list):
        def emit(self, note):
            self.append(note)

        def flush(self, timeout=30.0):
            pass

    init(isolated, say=lambda line: None)
    down = registry_client(dataclasses.replace(isolated, schema_registry_url="http://127.0.0.1:9"))
    emitter = Recording()
    reporter = LineageReporter(isolated, down, store=SchemaRegistryConfigStore(down, isolated.topics.prefix),
                               emitter=emitter)
    assert reporter.poll() is False and emitter == [] and reporter.reports == 0
    up = registry_client(isolated)  # the registry is back
    reporter.registry, reporter.store = up, SchemaRegistryConfigStore(up, isolated.topics.prefix)
    assert reporter.poll() is True and [n["type"] for n in emitter] == ["ENTITY_CREATE_V2"]
