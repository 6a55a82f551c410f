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

import os

PREFIX = "crn:mlstream:ml:local"


def uuid4_text() -> str:
    """A random (version 4) UUID as text, as ``str(uuid.uuid4())`` gives it, in a fifth of the time:
    the stream app names every prediction and every metric record, and ``uuid.UUID``'s constructor
    and ``__str__`` were most of a metric record's cost.

    >>> import uuid
    >>> text = uuid4_text()
    >>> str(uuid.UUID(text)) == text, uuid.UUID(text).version, uuid.UUID(text).variant == uuid.RFC_4122
    (True, 4, True)
    """
    b = bytearray(os.urandom(16))
    b[6] = b[6] & 0x0F | 0x40  # version 4
    b[8] = b[8] & 0x3F | 0x80  # the RFC 4122 variant
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def model_crn(model_name: str) -> str:
    return f"{PREFIX}:model/{model_name}"


def build_crn(model_name: str, build_version: str) -> str:
    return f"{model_crn(model_name)}/build/{build_version}"


def deployment_crn(model_name: str, deployment: str) -> str:
    """A deployment is a model serving one stream app (its application id)."""
    return f"{model_crn(model_name)}/deployment/{deployment}"
