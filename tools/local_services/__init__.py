"""Start, stop and inspect the local Kafka broker and Schema Registry, without Docker.

Kafka is Apache's own jars from Maven Central, run as one KRaft node that is both
broker and controller; the Schema Registry is Apicurio Registry, whose Confluent-
compatible API the apps reach at ``settings.schema_registry_url``. Versions are
pinned in ``conf/kafka/pom.xml`` and ``conf/registry/pom.xml`` (package data, with the
services' config files); Maven fetches the jars into ``settings.cache_dir`` on first use.
Both run as background processes in their own session, so they outlive the
``mlstream up`` that started them. State lives under
``settings.state_dir``: ``kafka-data/``, ``registry-data/``, ``logs/`` and ``run/``
(pid files, lock, rendered config).

- ``supervisor``: ``up``, ``down`` and ``status``, the only entry points callers need;
- ``java``: finding a Java launcher new enough for each service;
- ``maven``: pinned versions, and fetching the jars once;
- ``kafka``, ``registry``: each service's config, command line and health check;
- ``ports``: the addresses and ports the services take, and the checks on them;
- ``processes``: spawning, pid files, the marks that tell our processes from others, signals, the lock;
- ``state``: the service names, the state dir's layout, a service's status, the error.
"""

from tools.local_services.state import LocalServicesError, ServiceStatus
from tools.local_services.supervisor import down, status, up

__all__ = ["LocalServicesError", "ServiceStatus", "down", "status", "up"]
