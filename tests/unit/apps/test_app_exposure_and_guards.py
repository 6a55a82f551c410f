"""What both stream apps expose and how their timers and tasks fail: built here, never started."""

from __future__ import annotations

import dataclasses

import pytest

from apps.linker.app import LinkerApp
from apps.linker.settings import LinkageSettings, load_config
from apps.scorer.app import ScorerApp
from mlstream.settings import Settings


@pytest.fixture
def built_apps(tmp_path):
    settings = dataclasses.replace(Settings.from_env(), state_dir=tmp_path / "state")
    linkage = LinkageSettings("febrl", "test-linkage", 6067)
    return {"scorer": ScorerApp(settings).app,
            "linker": LinkerApp(settings, linkage, *load_config("febrl", settings)).app}


def test_every_timer_and_task_of_both_apps_is_guarded(built_apps):
    for name, app in built_apps.items():
        tasks = app._app_tasks  # Faust's list of the app's timers and tasks, each wrapped by Faust
        assert len(tasks) == (9 if name == "scorer" else 4), name  # timers and tasks: scorer 3 + 6, linker 2 + 2
        unguarded = [task.__name__ for task in tasks if not getattr(task, "mlstream_guarded", False)]
        assert not unguarded, f"{name}: {unguarded} can crash the app"


def test_web_servers_bind_loopback_by_default_and_serve_no_table_views(built_apps):
    for app in built_apps.values():
        assert app.conf.web_bind == "127.0.0.1"
        assert app.conf.web_tables_enabled is False


def test_a_setting_opens_the_web_servers(tmp_path, monkeypatch):
    monkeypatch.setenv("MLSTREAM_WEB_BIND", "0.0.0.0")
    settings = dataclasses.replace(Settings.from_env(), state_dir=tmp_path / "state")
    assert ScorerApp(settings).app.conf.web_bind == "0.0.0.0"
