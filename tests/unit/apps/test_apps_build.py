"""Importing the stream apps and building them contacts nothing and creates nothing in the state dir:
the broker, the registry and the model store are first called when a worker starts an app."""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import subprocess
import sys

from mlstream.settings import REPO_ROOT, Settings

# In a fresh interpreter, so the modules really are imported here. The pause after building gives
# any client a building made time to connect (librdkafka and HTTP clients connect in the background).
IMPORT_AND_BUILD = """
import json, time
from pathlib import Path

import apps.linker.app
import apps.scorer.app
from apps.linker.settings import LinkageSettings, load_config
from mlstream.settings import Settings

settings = Settings.from_env()
created_at_import = [str(p) for p in settings.state_dir.rglob("*")] if settings.state_dir.exists() else []
scorer = apps.scorer.app.ScorerApp(settings)
linkage = LinkageSettings.from_env()
linker = apps.linker.app.LinkerApp(settings, linkage, *load_config(linkage.config, settings))
time.sleep(1.0)
print(json.dumps({"created_at_import": created_at_import, "agents": sorted(
    agent.name for app in (scorer.app, linker.app) for agent in app.agents.values())}))
"""


def test_importing_and_building_the_apps_contacts_no_broker_registry_or_store(tmp_path):
    with socket.socket() as listener:  # stands in for all three: any contact queues a connection here
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        address = "127.0.0.1:%d" % listener.getsockname()[1]
        settings = dataclasses.replace(
            Settings.from_env(), bootstrap_servers=address, schema_registry_url=f"http://{address}",
            model_store="s3://models/checkpoints", s3_endpoint_url=f"http://{address}", state_dir=tmp_path / "state")
        env = os.environ | settings.to_env() | {"MLSTREAM_LINKAGE_CONFIG": "febrl"}
        done = subprocess.run([sys.executable, "-c", IMPORT_AND_BUILD], capture_output=True, text=True, env=env,
                              cwd=REPO_ROOT, timeout=120)
        assert done.returncode == 0, done.stderr
        listener.setblocking(False)
        try:
            contacted = listener.accept()[1]
        except BlockingIOError:
            contacted = None
    assert contacted is None, f"importing or building an app connected to {address}"
    built = json.loads(done.stdout.strip().splitlines()[-1])
    assert built["created_at_import"] == []
    assert built["agents"] == []  # both apps read their inputs on the data plane, not in Faust agents
