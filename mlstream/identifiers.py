"""Identifiers for models, builds and deployments, in the shape of CML's CRNs.

Cloudera Machine Learning names things ``crn:cdp:ml:<region>:<account>:workspace:<id>/<uuid>``;
users read those in ``read_metrics`` output. We keep the ``crn:`` form with our
own partition so the same fields carry readable, stable names:

    >>> model_crn("phishing")
    'crn:mlstream:ml:local:model/phishing'
    >>> build_crn("phishing", "3")
    'crn:mlstream:ml:local:model/phishing/build/3'
    >>> deployment_crn("phishing", "mlstream-scorer")
    'crn:mlstream:ml:local:model/phishing/deployment/mlstream-scorer'

The metrics API (:mod:`mlstream.metrics`) fills ``modelCrn``, ``modelBuildCrn`` and
``modelDeploymentCrn`` with these. Deployments are named after what serves the model: the
stream app's application id, ``<app id>-shadow`` for a challenger scored in shadow, and
``experiment-<name>`` for offline experiment runs (whose build is ``experiment``).
"""

PREFIX = "crn:mlstream:ml:local"


def model_crn(model_name: str) -> str:
    return f"{PREFIX}:model/{model_name}"


def build_crn(model_name: str, build_version: str) -> str:
    return f"{model_crn(model_name)}/build/{build_version}"


def deployment_crn(model_name: str, deployment: str) -> str:
    """A deployment is a model serving one stream app (its application id)."""
    return f"{model_crn(model_name)}/deployment/{deployment}"
