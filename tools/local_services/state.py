"""What the local services share: their names, the state dir's layout, a service's status, the error."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mlstream.errors import UserError
from mlstream.settings import Settings

KAFKA = "kafka"
REGISTRY = "schema-registry"

Progress = Callable[[str], None]


class LocalServicesError(UserError):
    """A local service cannot be fetched, started or stopped; the message says what to do."""


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    url: str
    pid: int | None
    running: bool
    healthy: bool
    log_path: Path


@dataclass(frozen=True)
class StatePaths:
    """Where one state dir keeps the services' data, logs, pid files and rendered config."""

    root: Path

    @property
    def kafka_data(self) -> Path:
        return self.root / "kafka-data"

    @property
    def registry_data(self) -> Path:
        return self.root / "registry-data"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def run(self) -> Path:
        return self.root / "run"

    @property
    def lock(self) -> Path:
        return self.run / "services.lock"

    @property
    def kafka_properties(self) -> Path:
        return self.run / "kafka-server.properties"

    def log(self, service: str) -> Path:
        return self.logs / f"{service}.log"

    def stdout_log(self, service: str) -> Path:
        """Where the JVM's own output goes: the registry logs there; Kafka only on a crash."""
        return self.log(service) if service == REGISTRY else self.logs / f"{service}-stdout.log"

    def pid_file(self, service: str) -> Path:
        return self.run / f"{service}.pid"


def state_paths(settings: Settings) -> StatePaths:
    # Absolute, because the paths end up in the services' command lines and config.
    return StatePaths(settings.local_services_dir.resolve())
