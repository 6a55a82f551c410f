"""The services' jars: versions pinned in their poms, fetched once from Maven Central by Maven.

The poms and the services' config files are package data (``conf/``), so an installed copy
runs ``mlstream up`` as a checkout does. The jars go to the cache dir
(``MLSTREAM_CACHE_DIR``, default ``~/.cache/mlstream``): about 210 MB that every state dir
and checkout shares, and that an installed package's folder (perhaps read-only) never holds.
The poms take the cache dir as the ``mlstream.cache`` property.
"""

from __future__ import annotations

import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

from tools.local_services.processes import file_lock
from tools.local_services.state import LocalServicesError, Progress

#: The poms and config files of the services, one folder each.
CONF_DIR = Path(__file__).resolve().parent / "conf"
MAVEN_TIMEOUT_S = 900.0
# Written after Maven finished, so a download cut short is fetched again.
COMPLETE_MARKER = ".complete"


def pinned_version(pom: Path, property_name: str) -> str:
    """A version property of one of the services' poms: each pom is where its version is pinned."""
    namespace = {"m": "http://maven.apache.org/POM/4.0.0"}
    element = ET.parse(pom).getroot().find(f"m:properties/m:{property_name}", namespace)
    if element is None or not (element.text or "").strip():
        raise LocalServicesError(f"{pom} has no <{property_name}> property")
    return element.text.strip()


def lib_dir(cache: Path, name: str, version: str) -> Path:
    """Where the pom of ``name`` puts version ``version``: ``<cache>/lib/<name>-<version>``."""
    return cache / "lib" / f"{name}-{version}"


def fetch_once(what: str, target: Path, pom: Path, goal: str, cache: Path, progress: Progress) -> None:
    """Run the pom's goal unless ``target`` holds a complete earlier fetch.

    One fetch at a time per cache dir: every checkout and state dir on the machine shares it.
    """
    if (target / COMPLETE_MARKER).exists():
        return
    with file_lock(cache / "lib" / ".fetch.lock"):
        if (target / COMPLETE_MARKER).exists():  # fetched by whoever held the lock before
            return
        progress(f"Fetching {what} from Maven Central into {target} (first run only)")
        shutil.rmtree(target, ignore_errors=True)
        _run_maven(pom, goal, cache)
        (target / COMPLETE_MARKER).touch()


def maven_command(mvn: str, pom: Path, goal: str, cache: Path) -> list[str]:
    return [mvn, "-B", "-q", "-f", str(pom), f"-Dmlstream.cache={cache}", goal]


def _run_maven(pom: Path, goal: str, cache: Path) -> None:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise LocalServicesError(
            "Maven (mvn) is needed once to fetch the Kafka and Apicurio Registry jars but is not on PATH;"
            " install it (e.g. apt-get install maven) and run again."
        )
    command = maven_command(mvn, pom, goal, cache)
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=MAVEN_TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        raise LocalServicesError(f"{' '.join(command)} took over {MAVEN_TIMEOUT_S:.0f}s; is Maven Central reachable?") from exc
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip().splitlines()
        raise LocalServicesError(
            f"{' '.join(command)} failed (exit {result.returncode}):\n" + "\n".join(output[-30:])
        )
