"""`mlstream config` against the real registry: put, get, history, diff, rollback; lineage configs are validated."""

from __future__ import annotations

import json

import pytest

from tools.cli import main

pytestmark = pytest.mark.integration


@pytest.fixture
def env(isolated, monkeypatch):
    for name, value in isolated.to_env().items():
        monkeypatch.setenv(name, value)
    return isolated


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_config_commands(env, tmp_path, capsys):
    first, second = tmp_path / "v1.yml", tmp_path / "v2.yml"
    first.write_text("model: {name: churn, threshold: 0.5}\n")
    second.write_text("model: {name: churn, threshold: 0.7}\n")
    assert run(capsys, "config", "put", "churn-model", str(first))[1] == "churn-model: version 1 (stored)\n"
    assert run(capsys, "config", "put", "churn-model", str(first))[1] == "churn-model: version 1 (unchanged)\n"
    run(capsys, "config", "put", "churn-model", str(second))
    assert run(capsys, "config", "get", "churn-model")[1] == second.read_text()
    assert run(capsys, "config", "get", "churn-model", "--version", "1")[1] == first.read_text()
    diff = run(capsys, "config", "diff", "churn-model", "1")[1]
    assert "-model: {name: churn, threshold: 0.5}" in diff and "+model: {name: churn, threshold: 0.7}" in diff
    assert "version 3 now holds the text of version 1" in run(capsys, "config", "rollback", "churn-model", "1")[1]
    history = json.loads(run(capsys, "config", "history", "churn-model", "--json")[1])
    assert [h["version"] for h in history] == [1, 2, 3] and history[0]["sha256"] == history[2]["sha256"]


def test_a_broken_lineage_config_is_refused_with_line_and_key(env, tmp_path, capsys):
    bad = tmp_path / "lineage.yml"
    bad.write_text("churn:\n  owner: me\n  feature: [a]\n")
    code, out, err = run(capsys, "config", "put", "lineage", str(bad))
    assert code == 2 and f"{bad}:3: churn.feature: unknown key" in err
    code, out, err = run(capsys, "config", "get", "lineage")
    assert code == 2 and "has no version" in err
