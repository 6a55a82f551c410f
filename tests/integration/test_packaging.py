"""A plain (not editable) ``pip install .`` works without the checkout: the command, its schemas, its data files.

The sources are copied out of the checkout and installed with ``pip install --no-deps`` into a
fresh venv of their own; the dependencies come from this test's own environment, through a
``.pth`` file (``venv --system-site-packages`` would give the base interpreter's packages, not
this venv's). Everything then runs from a working directory outside the repository, so a file
read from the checkout instead of the package would fail here. Slow (pip builds the wheel in an
isolated environment: setuptools from pip's cache), hence integration, though it needs no service.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from mlstream.settings import REPO_ROOT

pytestmark = pytest.mark.integration

PACKAGES = ("mlstream", "producers", "apps", "tools", "models", "linkage", "spark_jobs")

#: Run by the installed copy: where it is, what it loads, and what it finds on its own.
PROBE = """
import json, sys
from pathlib import Path

import mlstream, tools
from mlstream.kafka.serde import schema_text
from mlstream.kafka.topics import project_topics, schema_of
from mlstream.lineage.config import lineage_schema
from mlstream.lineage.typesystem import TypeSystem
from mlstream.registry.training import code_version
from mlstream.settings import SCHEMA_DIR, Settings
from linkage.config import CONFIG_DIR, LinkageConfig
from tools.local_services import kafka, registry

import fastavro

settings = Settings.from_env()
avro = {path.stem: fastavro.parse_schema(json.loads(schema_text(path.stem))) for path in SCHEMA_DIR.glob("*.avsc")}
types = TypeSystem.load()  # model files, then patches; checks every reference
print(json.dumps({
    "package_dirs": [str(Path(mlstream.__file__).parent), str(Path(tools.__file__).parent)],
    "avro_schemas": sorted(avro),
    "topic_schemas": sorted({schema_of(settings, spec.name) for spec in project_topics(settings) if spec.schema}),
    "lineage_schema_title": lineage_schema().get("title"),
    "atlas_entity_types": sorted(types.entity_defs),
    "atlas_patches": len(types.applied_patches),
    "linkage_configs": sorted(LinkageConfig.from_file(p.stem).name for p in CONFIG_DIR.glob("*.yaml")),
    "kafka_version": kafka.kafka_version(),
    "registry_version": registry.registry_version(),
    "code_version": code_version(),
    "state_dir": str(settings.state_dir),
}))
"""


def tracked_files(*paths: str) -> list[str]:
    listed = subprocess.run(["git", "-C", str(REPO_ROOT), "ls-files", *paths], capture_output=True, text=True,
                            check=True)
    return listed.stdout.split()


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict:
    """A venv with a plain install of a copy of the sources: its python, site-packages and a cwd elsewhere."""
    root = tmp_path_factory.mktemp("packaging")
    source = root / "source"
    for name in tracked_files("pyproject.toml", "README.md", *PACKAGES):
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / name, source / name)
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                               capture_output=True, text=True, check=True).stdout.strip())
    # This environment's packages (the dependencies), after the venv's own; its .pth files
    # (the editable install of the checkout) are not run from a path added this way.
    (site / "dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps",
                    str(source)], check=True, timeout=600)
    elsewhere = root / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MLSTREAM_STATE_DIR")}
    return {"python": python, "site": site, "cwd": elsewhere, "env": env, "bin": venv / "bin"}


def test_every_data_file_of_the_packages_is_installed(installed):
    data_files = {name for name in tracked_files(*PACKAGES) if not name.endswith(".py")}
    assert data_files, "no data files found in the checkout"
    missing = sorted(name for name in data_files if not (installed["site"] / name).is_file())
    assert missing == []


def test_mlstream_help_runs_from_the_installed_copy(installed):
    done = subprocess.run([str(installed["bin"] / "mlstream"), "--help"], cwd=installed["cwd"], env=installed["env"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: mlstream") and "demo" in done.stdout


def test_the_installed_copy_loads_its_schemas_and_files_outside_the_checkout(installed):
    done = subprocess.run([str(installed["python"]), "-c", PROBE], cwd=installed["cwd"], env=installed["env"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert all(Path(d).is_relative_to(installed["site"]) for d in found["package_dirs"]), found["package_dirs"]
    assert found["avro_schemas"] == sorted(Path(n).stem for n in tracked_files("mlstream/schemas/*.avsc"))
    assert set(found["topic_schemas"]) <= set(found["avro_schemas"])
    assert found["lineage_schema_title"]
    assert {"kafka_topic", "spark_process", "ml_model_build"} <= set(found["atlas_entity_types"])
    assert found["atlas_patches"] > 0
    assert found["linkage_configs"] == ["febrl", "febrl-dedupe"]
    assert found["kafka_version"].startswith("4.") and found["registry_version"].startswith("3.")
    # No checkout: the installed distribution names the code, and state goes where the command runs.
    assert found["code_version"] == "mlstream==0.1.0"
    assert found["state_dir"] == str(installed["cwd"] / ".mlstream")
