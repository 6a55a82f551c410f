"""The services' jars: versions pinned in their poms, fetched once from Maven Central by Maven."""

from __future__ import annotations

import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

from mlstream.settings import REPO_ROOT
from tools.local_services.state import LocalServicesError, Progress

INFRA_DIR = REPO_ROOT / "infra"
LIB_DIR = INFRA_DIR / "lib"
MAVEN_TIMEOUT_S = 900.0
# Written after Maven finished, so a download cut short is fetched again.
COMPLETE_MARKER = ".complete"


def pinned_version(pom: Path, property_name: str) -> str:
    """A version property of one of the infra poms: each pom is where its version is pinned."""
    namespace = {"m": "http://maven.apache.org/POM/4.0.0"}
    element = ET.parse(pom).getroot().find(f"m:properties/m:{property_name}", namespace)
    if element is None or not (element.text or "").strip():
        raise LocalServicesError(f"{pom} has no <{property_name}> property")
    return element.text.strip()


def fetch_once(what: str, target: Path, pom: Path, goal: str, progress: Progress) -> None:
    """Run the pom's goal unless ``target`` holds a complete earlier fetch."""
    if (target / COMPLETE_MARKER).exists():
        return
    progress(f"Fetching {what} from Maven Central into {target} (first run only)")
    shutil.rmtree(target, ignore_errors=True)
    _run_maven(pom, goal)
    (target / COMPLETE_MARKER).touch()


def _run_maven(pom: Path, goal: str) -> None:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise LocalServicesError(
            "Maven (mvn) is needed once to fetch the Kafka and Apicurio Registry jars but is not on PATH;"
            " install it (e.g. apt-get install maven) and run again."
        )
    command = [mvn, "-B", "-q", "-f", str(pom), goal]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=MAVEN_TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        raise LocalServicesError(f"{' '.join(command)} took over {MAVEN_TIMEOUT_S:.0f}s; is Maven Central reachable?") from exc
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip().splitlines()
        raise LocalServicesError(
            f"{' '.join(command)} failed (exit {result.returncode}):\n" + "\n".join(output[-30:])
        )
