"""Finding a Java launcher new enough for a service: $JAVA_HOME, PATH, then every JDK under /usr/lib/jvm."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from tools.local_services.state import LocalServicesError


def parse_java_major(version_output: str) -> int | None:
    """The major version in `java -version` output: 'openjdk version "17.0.15"' -> 17, '"1.8.0_392"' -> 8."""
    match = re.search(r'version "(\d+)(?:\.(\d+))?', version_output)
    if match is None:
        return None
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


def java_candidates() -> list[Path]:
    """Java launchers to consider, in order: $JAVA_HOME, PATH, then every JDK under /usr/lib/jvm."""
    found: list[Path] = []
    if java_home := os.environ.get("JAVA_HOME"):
        found.append(Path(java_home) / "bin" / "java")
    if on_path := shutil.which("java"):
        found.append(Path(on_path))
    found.extend(sorted(Path("/usr/lib/jvm").glob("*/bin/java")))
    unique: dict[Path, Path] = {}
    for candidate in found:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            unique.setdefault(candidate.resolve(), candidate)
    return list(unique.values())


def find_java(min_major: int, *, what: str) -> Path:
    """The first Java launcher (see java_candidates) of at least `min_major`."""
    seen = []
    for candidate in java_candidates():
        major = _java_major(candidate)
        if major is not None and major >= min_major:
            return candidate
        seen.append(f"Java {major} at {candidate}")
    found = "; found " + ", ".join(seen) if seen else "; no Java found"
    advice = (
        "install a JDK 17 (e.g. apt-get install openjdk-17-jdk-headless)"
        if min_major <= 17
        else f"install a JDK {min_major} or newer (e.g. Eclipse Temurin) under /usr/lib/jvm or set JAVA_HOME to it"
    )
    raise LocalServicesError(f"{what} needs Java {min_major} or newer{found}: {advice}.")


def _java_major(java: Path) -> int | None:
    try:
        result = subprocess.run([str(java), "-version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return parse_java_major(result.stderr + result.stdout)
