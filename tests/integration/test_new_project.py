"""Issue 18's "done when", on the session's broker and registry: ``mlstream new-project churn --team ds-team-a
--defaults``, then inside it ``mlstream project apply`` (twice: the second changes nothing) and ``make test`` (its
smoke test: 200 events of its schema, its app on its model and feature view, every one scored), and the lineage
service shows the project's topics and model.

The project's topics get this test's own prefix through ``--answers`` (``topic_prefix``), so runs on one broker
stay apart; its template repository is made in a cache dir of this test's own.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest

from apps.lineage_service.service import LineageService
from mlstream.kafka import clients
from mlstream.kafka.clients import registry_client
from mlstream.kafka.serde import value_subject
from mlstream.kafka.topics import TopicSpec, create_topics
from tests.conftest import free_port, isolated_settings
from tools.demo import wait_for

pytestmark = pytest.mark.integration

MLSTREAM = str(Path(sys.executable).parent / "mlstream")


def run(command: list[str], cwd: Path, env: dict, timeout_s: float = 300) -> subprocess.CompletedProcess:
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout_s)
    assert done.returncode == 0, f"{' '.join(command)}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


def test_new_project_apply_and_make_test_against_the_local_services(services, tmp_path):
    settings = dataclasses.replace(isolated_settings(services, tmp_path / "state"), lineage_port=free_port())
    prefix = f"{settings.topics.prefix}churn."
    hook = settings.topics.atlas_hook
    env = {k: v for k, v in os.environ.items() if k != "MLSTREAM_STATE_DIR"} | services.to_env() | {
        "MLSTREAM_ATLAS_HOOK_TOPIC": hook, "MLSTREAM_WEB_PORT": str(free_port()),
        "MLSTREAM_SERVICES_DIR": str(services.local_services_dir)}
    env.pop("MLSTREAM_STATE_DIR")  # the project's own .mlstream/, as for a user
    create_topics(clients.admin(settings), [TopicSpec(hook, 1, None)], lambda line: None)
    service = LineageService(settings, database=str(tmp_path / "lineage.db")).start()
    try:
        answers = tmp_path / "answers.yml"
        answers.write_text(f"topic_prefix: {prefix}\n")
        made = run([MLSTREAM, "new-project", "churn", "--team", "ds-team-a", "--defaults", "--answers", str(answers)],
                   tmp_path, env | {"MLSTREAM_CACHE_DIR": str(tmp_path / "cache")})
        project = tmp_path / "churn"
        assert f"made {project} from template" in made.stdout

        first = run([MLSTREAM, "project", "apply"], project, env).stdout
        assert f"create topic {prefix}events (3 partitions)" in first
        assert f"register schemas/events.avsc as {prefix}events-value version 1 (BACKWARD)" in first
        assert "store features/churn.yaml as config featureview.churn version 1" in first
        assert "store lineage.yml as config lineage version 1" in first
        assert "report the lineage of churn.model" in first
        assert "policies: stored as configs, not enforced: profile local's broker" in first
        second = run([MLSTREAM, "project", "apply"], project, env).stdout
        assert "nothing changed:" in second and "create " not in second and "store " not in second
        assert registry_client(settings).get_compatibility(value_subject(f"{prefix}events")) == "BACKWARD"

        tested = run(["make", "test", f"MLSTREAM={MLSTREAM}"], project, env, timeout_s=600)
        assert " passed" in tested.stdout and "failed" not in tested.stdout, tested.stdout

        graph = service.graph
        build_qn = "crn:mlstream:ml:local:model/churn.model/build/1"
        process_qn = f"{prefix.replace('.', '-')}scorer@{settings.atlas_namespace}"
        wait_for(lambda: graph.find(build_qn) and graph.find(process_qn), 60, "the project's lineage", poll_s=0.5)

        def upstream(qualified_name: str) -> set[str]:
            found = graph.lineage(graph.find(qualified_name)[0]["guid"], "INPUT", 3)
            return {h["attributes"]["qualifiedName"] for h in found["guidEntityMap"].values()}

        topics = {f"{prefix}events@primary", f"{prefix}labels@primary"}
        wait_for(lambda: topics | {build_qn} <= upstream(process_qn), 60, "the app's inputs", poll_s=0.5)
        assert topics <= upstream(build_qn)
        downstream = graph.lineage(graph.find(process_qn)[0]["guid"], "OUTPUT", 1)["guidEntityMap"].values()
        assert f"{prefix}predictions@primary" in {h["attributes"]["qualifiedName"] for h in downstream}
    finally:
        service.stop()


def test_apply_enforces_the_teams_policies_on_the_secured_broker(secured_services, tmp_path):
    """On a SASL broker the policies become SCRAM users and ACLs (as 'mlstream security apply' makes them), once."""
    settings = secured_services
    prefix = f"test-{os.urandom(4).hex()}."
    env = {k: v for k, v in os.environ.items() if k != "MLSTREAM_STATE_DIR"} | {
        "MLSTREAM_SERVICES_DIR": str(settings.local_services_dir), "MLSTREAM_CACHE_DIR": str(tmp_path / "cache")}
    answers = tmp_path / "answers.yml"
    answers.write_text(f"topic_prefix: {prefix}\n")
    run([MLSTREAM, "new-project", "fraud", "--team", "ds-team-b", "--profile", "secure-local", "--defaults",
         "--answers", str(answers)], tmp_path, env)
    project = tmp_path / "fraud"
    # the client user's ACLs on the project's prefix and app id, as the project's `make up` grants them
    run([MLSTREAM, "project", "run", "--", "mlstream", "up"], project, env)
    first = run([MLSTREAM, "project", "apply"], project, env).stdout
    assert f"create topic {prefix}events (3 partitions)" in first
    for operation in ("READ", "WRITE", "DESCRIBE"):
        assert f"create ACL ALLOW User:ds-bo {operation} TOPIC PREFIXED {prefix} from *" in first
    assert f"create ACL ALLOW User:ds-bo READ GROUP PREFIXED {prefix} from *" in first
    assert "not enforced" not in first
    second = run([MLSTREAM, "project", "apply"], project, env).stdout
    assert "nothing changed:" in second
    # another project of the same team: its apply leaves this one's ACLs alone (it owns only its own prefix)
    answers.write_text(f"topic_prefix: test-{os.urandom(4).hex()}.\n")
    run([MLSTREAM, "new-project", "other", "--team", "ds-team-b", "--profile", "secure-local", "--defaults",
         "--answers", str(answers)], tmp_path, env)
    run([MLSTREAM, "project", "run", "--", "mlstream", "up"], tmp_path / "other", env)
    other = run([MLSTREAM, "project", "apply"], tmp_path / "other", env).stdout
    assert "delete ACL" not in other, other
    assert "nothing changed:" in run([MLSTREAM, "project", "apply"], project, env).stdout
