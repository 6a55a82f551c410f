"""Retrace questions as commands: how a build was made, what read a topic, what a redeploy or retire changed."""

from __future__ import annotations

import dataclasses
import json

import pytest

from apps.lineage_service.service import LineageService
from mlstream.identifiers import build_crn, deployment_crn
from mlstream.kafka.topics import init
from mlstream.registry.records import Build
from mlstream.registry.training import manifest_of
from producers.datasets import examples, source_name
from producers.feed import KafkaFeedSink, play
from tests.conftest import free_port
from tools.cli import main
from tools.demo import wait_for

pytestmark = pytest.mark.integration


def run(capsys, *args: str) -> str:
    code = main(["lineage", *args])
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


def test_build_readers_and_changes_answer_from_the_lineage(isolated, tmp_path, capsys, monkeypatch):
    settings = dataclasses.replace(isolated, lineage_port=free_port())
    for name, value in settings.to_env().items():
        monkeypatch.setenv(name, value)
    init(settings, say=lambda line: None)
    service = LineageService(settings, database=str(tmp_path / "lineage.db")).start()
    try:
        play(examples("sea-drift", seed=1), KafkaFeedSink(settings), dataset="sea-drift",
             source=source_name("sea-drift"), seed=1, label_delay_s=0.0, limit=200, progress=lambda line: None)
        assert main(["models", "build", "sea", "--spec", "logistic_regression", "--json"]) == 0  # sea/1
        first = manifest_of(Build.from_dict(json.loads(capsys.readouterr().out)))
        assert main(["models", "build", "sea", "--spec", "logistic_regression"]) == 0  # sea/2
        for step, build in (("deploy", "1"), ("redeploy", "2"), ("retire", None)):
            assert main(["lineage", "deployment", step, "--model", "sea", "--deployment", "app",
                         *(["--build", build] if build else [])]) == 0
        deployment = deployment_crn("sea", "app")
        wait_for(lambda: service.graph.find(deployment) and service.graph.entity(service.graph.find(deployment)[0][
            "guid"])["entity"]["attributes"]["status"] == "stopped", 60, "the retire to be applied", poll_s=0.3)
        assert service.graph.rejected() == []
        capsys.readouterr()

        made = json.loads(run(capsys, "build", "sea/1", "--json"))
        records, labels = settings.topics.records, settings.topics.labels
        assert made["build"]["qualifiedName"] == build_crn("sea", "1")
        assert (made["code_version"], made["spec"], made["features"], made["sampling"]) == \
            (first.code_version, "logistic_regression", first.features, first.sampling)
        assert made["feature_view"] == first.feature_view == "default@builtin"
        assert made["schema_versions"] == {f"{records}-value": [1], f"{labels}-value": [1]}
        assert [(s["name"], s["examples"], s["records"]) for s in made["splits"]] == \
            [(s.name, s.examples, [vars(r) for r in s.records]) for s in first.splits]
        assert {(d["qualifiedName"], tuple(d.get("schema_versions", ()))) for d in made["datasets"]} == \
            {(f"{records}@primary", (1,)), (f"{labels}@primary", (1,))}
        assert made["trained_by"] == [f"{build_crn('sea', '1')}/train"]
        assert made["deployments"] == []  # the deployment moved on to build 2
        text = run(capsys, "build", "sea/2")
        assert "(feature view default@builtin)" in text
        assert f"{records}[0] 0.." in text and "served by:" in text and deployment in text and "stopped" in text

        readers = json.loads(run(capsys, "readers", records, "--json"))
        assert [b["qualifiedName"] for b in readers["builds"]] == [build_crn("sea", "1"), build_crn("sea", "2")]
        assert [(d["qualifiedName"], d["deployment_status"], d["build"]) for d in readers["deployments"]] == \
            [(deployment, "stopped", [build_crn("sea", "2")])]
        assert {r["qualifiedName"] for r in readers["read_directly_by"]} == \
            {f"{build_crn('sea', '1')}/train", f"{build_crn('sea', '2')}/train"}
        assert "model builds trained on it:" in run(capsys, "readers", records)

        changed = json.loads(run(capsys, "changes", "sea@app", "--json"))
        assert changed["entity"]["qualifiedName"] == deployment
        steps = [c for c in changed["changes"] if c["action"] == "ENTITY_UPDATE"]
        redeploy, retire = steps[-2], steps[-1]
        assert redeploy["relationships"]["build"] == {"before": [build_crn("sea", "1")],
                                                      "after": [build_crn("sea", "2")]}
        assert redeploy["attributes"]["metadata.action"] == {"before": "deploy", "after": "redeploy"}
        assert retire["attributes"]["status"] == {"before": "deployed", "after": "stopped"}
        assert "relationships" in retire and retire["relationships"] == {}
        [moved] = [c for c in changed["deploy_process"]["changes"] if c["action"] == "ENTITY_UPDATE"]
        assert moved["relationships"]["inputs"] == {"before": [build_crn("sea", "1")], "after": [build_crn("sea", "2")]}
        text = run(capsys, "changes", "sea@app")
        assert "status: deployed -> stopped" in text and f"build: {build_crn('sea', '1')} -> {build_crn('sea', '2')}" \
            in text

        shown = json.loads(run(capsys, "show", "sea/1", "--json"))
        assert shown["entity"]["qualifiedName"] == build_crn("sea", "1")
        [train] = shown["upstream"]
        assert train["qualifiedName"] == f"{build_crn('sea', '1')}/train"
        assert {n["qualifiedName"] for n in train["from"]} == {f"{records}@primary", f"{labels}@primary"}

        assert main(["lineage", "build", records]) == 2  # a topic is not a build: a clear error
        assert "not a model build" in capsys.readouterr().err
    finally:
        service.stop()
