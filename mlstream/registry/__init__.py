"""The model registry: specs, builds (trained snapshots) and deployments (which build serves which app).

Kafka-free core (:mod:`records`, :mod:`registry`, :mod:`snapshots`) plus adapters: the
metadata log on a compacted Kafka topic (:mod:`metadata_log`), deployment commands on a
control topic (:mod:`control`), and the training job (:mod:`training`).
"""

from mlstream.registry.records import Build, Deployment, ModelSpec
from mlstream.registry.registry import Registry, RegistryError

__all__ = ["Build", "Deployment", "ModelSpec", "Registry", "RegistryError"]
