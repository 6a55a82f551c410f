"""Shared fixtures: one local broker and registry per test session, unique topics per test."""

from __future__ import annotations

import dataclasses
import os
import socket
import uuid

import pytest

from mlstream.settings import Settings, Topics


@pytest.fixture(scope="session")
def services() -> Settings:
    """The local Kafka and Schema Registry, started once; stopped at the end if this session started them."""
    from mlstream import local_services

    settings = Settings.from_env()
    was_running = all(s.healthy for s in local_services.status(settings))
    local_services.up(settings)
    yield settings
    if not was_running and not os.environ.get("MLSTREAM_KEEP_SERVICES"):
        local_services.down(settings)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
