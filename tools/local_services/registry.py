"""Apicurio Registry as the local Schema Registry: its app, config, command line and health."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

from mlstream.settings import Settings
from tools.local_services import maven
from tools.local_services.ports import REGISTRY_API_PATH
from tools.local_services.processes import service_markers
from tools.local_services.state import REGISTRY, Progress, state_paths

REGISTRY_POM = maven.CONF_DIR / "registry" / "pom.xml"
REGISTRY_PROPERTIES = maven.CONF_DIR / "registry" / "application.properties"

# Apicurio Registry 3.3 is compiled for Java 21 (class file version 65).
MIN_JAVA = 21
START_TIMEOUT_S = 90.0


def registry_version() -> str:
    return maven.pinned_version(REGISTRY_POM, "apicurio.version")


def registry_home_dir(cache: Path, version: str) -> Path:
    return maven.lib_dir(cache, "apicurio-registry", version)


def ensure_registry_app(cache: Path, version: str, progress: Progress) -> Path:
    """The unpacked Apicurio Registry app (quarkus-run.jar and its lib/), unpacked by Maven on first use."""
    target = registry_home_dir(cache, version)
    maven.fetch_once(f"Apicurio Registry {version}", target, REGISTRY_POM, "dependency:unpack", cache, progress)
    return target


def registry_jvm_options(settings: Settings) -> list[str]:
    paths = state_paths(settings)
    return [
        "-Xms64m",
        "-Xmx512m",
        "-Djava.awt.headless=true",
        f"-Dquarkus.config.locations={REGISTRY_PROPERTIES.as_uri()}",
        "-Dquarkus.http.host=127.0.0.1",
        f"-Dquarkus.http.port={settings.registry_port}",
        # Schemas persist, like the Kafka topics whose messages carry their ids: an
        # in-memory registry would hand the same ids to other schemas after a restart.
        f"-Dapicurio.datasource.url=jdbc:h2:file:{paths.registry_data / 'registry'}",
        # Health and metrics have their own port (9000 by default); any free one will do.
        "-Dquarkus.management.host=127.0.0.1",
        "-Dquarkus.management.port=0",
        *service_markers(settings, paths, REGISTRY),
    ]


def registry_command(settings: Settings, java: Path, home: Path) -> list[str]:
    return [str(java), *registry_jvm_options(settings), "-jar", str(home / "quarkus-run.jar")]


def registry_answers(settings: Settings, *, timeout_s: float) -> bool:
    try:
        subjects = f"http://127.0.0.1:{settings.registry_port}{REGISTRY_API_PATH}/subjects"
        with urllib.request.urlopen(subjects, timeout=timeout_s) as response:
            return response.status == 200
    except (OSError, urllib.error.URLError):
        return False
