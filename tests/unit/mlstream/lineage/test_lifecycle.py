"""Deploy, redeploy, roll back and retire: partial updates that keep history and lineage."""

from __future__ import annotations

from apps.lineage_service.graph import LineageGraph
from mlstream.identifiers import build_crn, deployment_crn
from mlstream.lineage import entities as e
from mlstream.lineage import lifecycle
from mlstream.lineage.hook import entity_create_v2
from mlstream.lineage.typesystem import TypeSystem


def test_every_lifecycle_notification_fits_atlas_types():
    types = TypeSystem.load()
    notes = [*lifecycle.deploy("m", 1, "app", deployed_at_ms=1, user="u", endpoint="http://x"),
             *lifecycle.redeploy("m", 2, "app", deployed_at_ms=2, user="u"),
             *lifecycle.rollback("m", 1, "app", deployed_at_ms=3, user="u"),
             lifecycle.retire("m", "app", retired_at_ms=4, user="u")]
    assert [types.validate_notification(n) for n in notes] == [[]] * len(notes)


def test_rollback_and_retire_keep_history_and_lineage():
    graph = LineageGraph(":memory:")
    for version in (1, 2):
        build = e.ml_model_build(build_crn("m", str(version)), "m", version, guid="-1")
        graph.apply(entity_create_v2([build], user="u"))
    apply = lambda notes: [graph.apply(n) for n in notes]  # noqa: E731
    apply(lifecycle.deploy("m", 1, "app", deployed_at_ms=1000, user="u"))
    apply(lifecycle.redeploy("m", 2, "app", deployed_at_ms=2000, user="u"))
    apply(lifecycle.rollback("m", 1, "app", deployed_at_ms=3000, user="u"))
    apply([lifecycle.retire("m", "app", retired_at_ms=4000, user="u")])
    assert graph.rejected() == []

    deployment = graph.entity_by_unique("ml_model_deployment", deployment_crn("m", "app"))
    assert deployment["attributes"]["status"] == "stopped"
    assert deployment["attributes"]["deployedTime"] == 3000 and deployment["attributes"]["createTime"] == 1000
    assert deployment["relationshipAttributes"]["build"]["uniqueAttributes"]["qualifiedName"] == build_crn("m", "1")
    states = [(h["entity"]["attributes"]["status"], h["entity"]["attributes"]["metadata"]["action"],
               h["entity"]["relationshipAttributes"]["build"]["uniqueAttributes"]["qualifiedName"][-1])
              for h in graph.history(deployment["guid"])]
    assert states == [("deployed", "deploy", "1"), ("deployed", "redeploy", "2"), ("deployed", "rollback", "1"),
                      ("stopped", "retire", "1")]

    upstream = graph.lineage(deployment["guid"], "INPUT", 1)
    names = {h["attributes"]["qualifiedName"] for h in upstream["guidEntityMap"].values()}
    assert build_crn("m", "1") in names and build_crn("m", "2") not in names
    build2 = graph.entity_by_unique("ml_model_build", build_crn("m", "2"))
    assert graph.history(build2["guid"])  # the earlier build is still there, with its own history
