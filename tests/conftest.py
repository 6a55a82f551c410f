"""Shared fixtures: one local broker and registry per test session, unique topics per test."""

from __future__ import annotations

import dataclasses
import os
import socket
import subprocess
import uuid

import pytest

from mlstream.settings import REPO_ROOT, Settings, Topics


@pytest.fixture(scope="session")
def services() -> Settings:
    """The local Kafka and Schema Registry, started once; stopped at the end if this session started them."""
    from tools import local_services

    settings = Settings.from_env()
    was_running = all(s.healthy for s in local_services.status(settings))
    local_services.up(settings)
    yield settings
    if not was_running and not os.environ.get("MLSTREAM_KEEP_SERVICES"):
        local_services.down(settings)


@pytest.fixture(scope="session")
def secured_services() -> Settings:
    """The secure-local broker (SASL_SSL, SCRAM-SHA-512, ACLs) and its registry, started once beside the plain ones;
    stopped at the end if this session started them."""
    from tools import local_services

    settings = Settings.from_env(profile="secure-local")
    was_running = all(s.healthy for s in local_services.status(settings))
    local_services.up(settings)
    yield settings
    if not was_running and not os.environ.get("MLSTREAM_KEEP_SERVICES"):
        local_services.down(settings)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def infra_script(name: str, timeout_s: float) -> str:
    """Run ``infra/<name>`` (it installs and starts a Debian package's server or tool) and
    return the last line it prints: a URL or a path."""
    done = subprocess.run(["bash", str(REPO_ROOT / "infra" / name)], capture_output=True, text=True,
                          timeout=timeout_s)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def isolated_settings(services: Settings, state_dir) -> Settings:
    """Settings of the running services with topics, app id, web port and state of one test alone."""
    run = uuid.uuid4().hex[:8]
    return dataclasses.replace(
        services,
        topics=Topics(prefix=f"test-{run}.", atlas_hook=f"test-{run}.ATLAS_HOOK"),
        app_id=f"test-{run}",
        web_port=free_port(),
        state_dir=state_dir,
    )


@pytest.fixture
def isolated(services: Settings, tmp_path) -> Settings:
    return isolated_settings(services, tmp_path / "state")


@pytest.fixture(scope="session")
def spark(services, tmp_path_factory):
    """One SparkSession for the whole test session, with the Kafka and Avro connectors.

    A JVM takes its jars once, when the first session starts: a test that started a plain
    session first would leave every later one without the Kafka source, so all share this one.
    Starting Spark costs ~10 s (the first time, the connector jars come from Maven Central too).
    """
    from spark_jobs import session

    settings = dataclasses.replace(services, state_dir=tmp_path_factory.mktemp("spark-session"))
    started = session.spark_session(settings, "mlstream-tests", driver_memory="768m")
    yield started
    started.stop()
