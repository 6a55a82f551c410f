"""The docs' commands work as written: every fenced block marked ```sh runnable in README.md and
docs/*.md runs, in bash, against the session's Kafka and registry.

Only quick commands are marked (seconds each): the test runs them all on every `make test`. A
block runs in a fresh folder (files it writes stay there), on topics and registry subjects of
its own (a unique topic prefix), with the services' state dir so `mlstream up` and
`mlstream status` see the running services.
"""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from mlstream.settings import REPO_ROOT, Topics

pytestmark = pytest.mark.integration

MARKER = "sh runnable"
BLOCK = re.compile(r"^```" + MARKER + r"\n(.*?)^```$", re.MULTILINE | re.DOTALL)
PAGES = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]


def runnable_blocks() -> list[tuple[str, str]]:
    return [(f"{page.relative_to(REPO_ROOT)}#{n}", block) for page in PAGES
            for n, block in enumerate(BLOCK.findall(page.read_text()), 1)]


def test_the_docs_mark_commands_as_runnable():
    names = {name.split("#")[0] for name, _ in runnable_blocks()}
    assert "README.md" in names and len(names) >= 5, names


@pytest.mark.parametrize("name,block", runnable_blocks(), ids=[name for name, _ in runnable_blocks()])
def test_a_runnable_block_works_as_written(services, tmp_path, name, block):
    run = uuid.uuid4().hex[:8]
    settings = dataclasses.replace(services, topics=Topics(prefix=f"docs-{run}.", atlas_hook=f"docs-{run}.ATLAS_HOOK"))
    # `mlstream` from this interpreter's environment, as `make` puts .venv/bin first
    env = os.environ | settings.to_env() | {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", block], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{name} failed ({done.returncode}):\n{block}\n--- stdout\n{done.stdout}\n" \
                                 f"--- stderr\n{done.stderr}"
