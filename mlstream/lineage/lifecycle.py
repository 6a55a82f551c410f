"""Deployments in the lineage: deploy, redeploy or roll back a build, retire a deployment.

A deployment is CML's ``ml_model_deployment`` (qualifiedName: the deployment CRN), linked
to the build it serves (``ml_build_deployment``) and fed by an ``ml_model_deploy_process``
(``<deployment crn>/deploy``) from that build. The first deploy creates them; a redeploy,
a rollback to an earlier build or a retirement changes them with ENTITY_PARTIAL_UPDATE_V2,
so nothing else about them is overwritten and Atlas (or the embedded service) keeps every
earlier state in the entity's audit. A retired deployment is ``stopped``, not deleted: its
lineage stays queryable.

    >>> notes = deploy("churn", 3, "scorer", deployed_at_ms=1000, user="me")
    >>> [n["type"] for n in notes]
    ['ENTITY_CREATE_V2']
    >>> update = retire("churn", "scorer", retired_at_ms=2000, user="me")
    >>> update["entity"]["entity"]["attributes"]["status"]
    'stopped'
"""

from __future__ import annotations

from mlstream.identifiers import build_crn, deployment_crn
from mlstream.lineage import entities as e
from mlstream.lineage.hook import entity_create_v2, entity_partial_update_v2

DEPLOYED, STOPPED = "deployed", "stopped"  # ml_model_deployment_status values


def _build_ref(model: str, build_version: int) -> dict:
    return e.object_id(e.ML_MODEL_BUILD, build_crn(model, str(build_version)))


def deploy(model: str, build_version: int, deployment: str, *, deployed_at_ms: int, user: str,
           cpu_millicores: int = 1000, endpoint: str | None = None) -> list[dict]:
    """The first deployment of ``model`` as ``deployment`` (a stream app id), serving ``build_version``."""
    crn = deployment_crn(model, deployment)
    attributes = {"qualifiedName": crn, "name": f"{model} on {deployment}", "createTime": deployed_at_ms,
                  "deployedTime": deployed_at_ms, "status": DEPLOYED, "cpuMillicores": cpu_millicores,
                  "metadata": {"build": str(build_version), "action": "deploy"}}
    if endpoint:
        attributes["modelEndpointURL"] = endpoint
    target = {"typeName": e.ML_MODEL_DEPLOYMENT, "guid": "-1", "attributes": attributes,
              "relationshipAttributes": {"build": e.reference_to(_build_ref(model, build_version), e.BUILD_DEPLOYMENT)}}
    process = {"typeName": e.ML_DEPLOY_PROCESS, "guid": "-2",
               "attributes": {"qualifiedName": f"{crn}/deploy", "name": f"deploy {model} on {deployment}",
                              "userName": user},
               "relationshipAttributes": {
                   "inputs": [e.reference_to(_build_ref(model, build_version), e.PROCESS_INPUTS)],
                   "outputs": [e.reference_to(target, e.PROCESS_OUTPUTS)]}}
    return [entity_create_v2([process], [target], user=user)]


def redeploy(model: str, build_version: int, deployment: str, *, deployed_at_ms: int, user: str,
             action: str = "redeploy") -> list[dict]:
    """Serve another build (a new one, or an earlier one: ``action="rollback"``) on an existing deployment."""
    crn = deployment_crn(model, deployment)
    build = _build_ref(model, build_version)
    return [
        entity_partial_update_v2(e.object_id(e.ML_MODEL_DEPLOYMENT, crn), {
            "typeName": e.ML_MODEL_DEPLOYMENT,
            "attributes": {"deployedTime": deployed_at_ms, "status": DEPLOYED,
                           "metadata": {"build": str(build_version), "action": action}},
            "relationshipAttributes": {"build": e.reference_to(build, e.BUILD_DEPLOYMENT)}}, user=user),
        entity_partial_update_v2(e.object_id(e.ML_DEPLOY_PROCESS, f"{crn}/deploy"), {
            "typeName": e.ML_DEPLOY_PROCESS, "attributes": {},
            "relationshipAttributes": {"inputs": [e.reference_to(build, e.PROCESS_INPUTS)]}}, user=user),
    ]


def rollback(model: str, build_version: int, deployment: str, *, deployed_at_ms: int, user: str) -> list[dict]:
    return redeploy(model, build_version, deployment, deployed_at_ms=deployed_at_ms, user=user, action="rollback")


def retire(model: str, deployment: str, *, retired_at_ms: int, user: str) -> dict:
    """Stop a deployment: status ``stopped``; the entity, its build link and its lineage stay."""
    return entity_partial_update_v2(e.object_id(e.ML_MODEL_DEPLOYMENT, deployment_crn(model, deployment)), {
        "typeName": e.ML_MODEL_DEPLOYMENT,
        "attributes": {"status": STOPPED, "metadata": {"action": "retire", "retiredAt": str(retired_at_ms)}}},
        user=user)
