"""``mlstream new-project`` without services: names, answers, the rendered files, bad input, and ``project update``'s
3-way merge between two template versions (git and copier, in tmp folders)."""

from __future__ import annotations

import importlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mlstream.features.view import FeatureView
from mlstream.lineage.config import load_lineage_yaml
from mlstream.security.directory import Directory
from mlstream.security.policies import PolicyFile
from mlstream.settings import Topics
from tools import new_project as np
from tools.cli import main
from tools.project_apply import Project


def answers(name: str = "churn", **extra) -> dict:
    return np.project_answers(name, teams=["ds-team-a"], profile=None, answers_file=None, directory=None) | extra


def make(tmp_path: Path, name: str = "churn", **extra) -> np.NewProject:
    return np.new_project(name, tmp_path / name, answers(name, **extra), cache_dir=tmp_path / "cache", defaults=True,
                          say=lambda line: None)


@pytest.mark.parametrize("name", ["churn", "churn-eu", "c3", "a" * 40])
def test_valid_project_names(name):
    assert np.check_project_name(name) == name


@pytest.mark.parametrize("name", ["Churn", "3churn", "churn-", "churn_eu", "churn.eu", "", "a" * 41, "tools", "json"])
def test_invalid_project_names_are_refused(name):
    with pytest.raises(np.ProjectError, match="project name"):
        np.check_project_name(name)


def test_a_team_the_directory_does_not_know_is_an_error():
    with pytest.raises(np.ProjectError, match=r"team\(s\) ds-team-z not in the directory .*its teams: ds-team-a, "):
        np.project_answers("churn", teams=["ds-team-z"], profile=None, answers_file=None, directory=None)


def test_the_teams_users_come_from_the_directory():
    given = answers()
    assert given["team_users"] == {"ds-ana": {"groups": ["ds-team-a"], "description": "data scientist, team A"},
                                   "ds-arjun": {"groups": ["ds-team-a"], "description": "data scientist, team A"}}
    assert given["mlstream_bin"].endswith("mlstream") and given["teams"] == ["ds-team-a"]


def test_answers_come_from_the_file_then_the_flags(tmp_path):
    file = tmp_path / "answers.yml"
    file.write_text("topic_prefix: shop.churn.\nprofile: secure-local\nteams: [ds-team-b]\n")
    given = np.project_answers("churn", teams=[], profile="local", answers_file=file, directory=None)
    assert (given["topic_prefix"], given["profile"], given["teams"]) == ("shop.churn.", "local", ["ds-team-b"])
    file.write_text("colour: blue\n")
    with pytest.raises(np.ProjectError, match="unknown question\\(s\\) colour; the template asks"):
        np.project_answers("churn", teams=["ds-team-a"], profile=None, answers_file=file, directory=None)
    with pytest.raises(np.ProjectError, match="give the project's team"):
        np.project_answers("churn", teams=[], profile=None, answers_file=None, directory=None)


def test_the_rendered_project_parses(tmp_path):
    made = make(tmp_path)
    root = made.path
    assert made.version == "0.1.0" and (root / ".git").is_dir()
    assert subprocess.run(["git", "-C", str(root), "status", "--porcelain"], capture_output=True,
                          text=True).stdout == ""
    for path in [*root.rglob("*.yaml"), *root.rglob("*.yml")]:
        assert yaml.safe_load(path.read_text()) is not None, path
    schema = json.loads((root / "schemas" / "events.avsc").read_text())
    import fastavro
    fastavro.parse_schema(schema)
    view = FeatureView.parse((root / "features" / "churn.yaml").read_text(), "churn.yaml", Topics(prefix="churn."),
                             name="churn", version=1)
    assert (view.records_topic, view.labels_topic, view.categoricals) == ("churn.events", "churn.labels", ("plan",))
    assert set(load_lineage_yaml((root / "lineage.yml").read_text())) == {"churn.model"}
    directory = Directory.parse((root / "security" / "directory.yaml").read_text(), "directory.yaml")
    assert directory.members("ds-team-a") == ("ds-ana", "ds-arjun")
    policies = PolicyFile.parse((root / "security" / "kafka-policies.json").read_text(), "kafka-policies.json",
                                directory, "kafka")
    assert policies.policies
    project = Project.load(root)
    assert project.settings["MLSTREAM_MODEL"] == "churn.model" and project.topics[0][0] == "churn.events"
    assert all(path.is_file() for path in project.configs.values())
    metadata = yaml.safe_load((root / ".project-metadata.yaml").read_text())
    assert {"name", "description", "author", "specification_version", "runtimes", "tasks"} <= set(metadata)
    assert all((root / task["script"]).is_file() for task in metadata["tasks"])
    assert np.mlstream_executable() in (root / "Makefile").read_text()
    for script in root.rglob("*.py"):
        compile(script.read_text(), str(script), "exec")


def test_the_model_spec_imports_learns_and_predicts(tmp_path, monkeypatch):
    made = make(tmp_path, "spec-check")
    monkeypatch.syspath_prepend(str(made.path))
    import models
    model = models.build("spec_check.model")
    example = {"tenure_months": 3.0, "monthly_fee": 20.0, "support_calls": 4.0, "plan": "basic", "paperless": 1.0}
    model.learn_one(example, True)
    assert model.predict_one(example) in (True, False)
    feed = importlib.import_module("spec_check.feed")
    import random
    event, _ = feed.example("r", 1, random.Random(3))
    import fastavro
    fastavro.validate(event, fastavro.parse_schema(json.loads(feed.SCHEMA.read_text())), raise_errors=True)
    for module in [m for m in sys.modules if m.startswith("spec_check")]:
        del sys.modules[module]


def test_an_existing_non_empty_folder_is_refused_and_left_alone(tmp_path):
    target = tmp_path / "churn"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    with pytest.raises(np.ProjectError, match="exists and is not an empty folder"):
        make(tmp_path)
    assert [p.name for p in target.iterdir()] == ["notes.txt"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_a_render_that_fails_leaves_nothing(tmp_path):
    broken = tmp_path / "template"
    shutil.copytree(np.TEMPLATE_DIR, broken)
    (broken / "project" / "README.md.jinja").write_text("{{ no_such_answer.attribute }}")
    with pytest.raises(np.ProjectError, match="could not be rendered.*nothing was written"):
        np.new_project("churn", tmp_path / "churn", answers(), cache_dir=tmp_path / "cache", defaults=True,
                       template=broken, version="9.9.9", say=lambda line: None)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "template"]


@pytest.mark.parametrize("argv, says", [
    (["new-project", "Churn", "--team", "ds-team-a", "--defaults"], "project name 'Churn'"),
    (["new-project", "churn", "--team", "nobody", "--defaults"], "team(s) nobody not in the directory"),
])
def test_bad_input_is_one_line_and_exit_2(argv, says, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("mlstream new-project: error: ") and says in err and len(err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_the_template_repository_tags_each_new_content_once(tmp_path):
    template = tmp_path / "template"
    shutil.copytree(np.TEMPLATE_DIR, template)
    cache = tmp_path / "cache"
    assert np.template_repo(cache, template, "1.0")[1] == "1.0"
    assert np.template_repo(cache, template, "1.0")[1] == "1.0"  # the same content keeps its tag
    (template / "project" / "NOTES.md").write_text("new\n")
    assert np.template_repo(cache, template, "1.0")[1] == "1.0.post1"
    assert np.template_repo(cache, template, "1.1")[1] == "1.0.post1"


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, check=True).stdout


def test_update_merges_a_new_template_version_and_keeps_the_users_edit(tmp_path):
    template = tmp_path / "template"
    shutil.copytree(np.TEMPLATE_DIR, template)
    cache = tmp_path / "cache"
    made = np.new_project("churn", tmp_path / "churn", answers(), cache_dir=cache, defaults=True, template=template,
                          version="1.0", say=lambda line: None)
    # the user's edit: a feature dropped from the view, committed
    view = made.path / "features" / "churn.yaml"
    view.write_text(view.read_text().replace("  - {path: paperless, type: boolean}\n", ""))
    git(made.path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "no paperless feature")
    # the template's change: the Makefile gets a target, the README a section
    makefile = template / "project" / "Makefile.jinja"
    makefile.write_text(makefile.read_text() + "\nlint:\n\t$(RUN) python -m pyflakes {{ package }}\n")
    readme = template / "project" / "README.md.jinja"
    readme.write_text(readme.read_text() + "\n## Linting\n\n    make lint\n")
    old, new = np.update_project(made.path, cache_dir=cache, template=template, version="1.1", say=lambda line: None)
    assert (old, new) == ("1.0", "1.1")
    assert "paperless" not in view.read_text()  # the user's edit is kept
    assert "lint:" in (made.path / "Makefile").read_text() and "## Linting" in (made.path / "README.md").read_text()
    recorded = yaml.safe_load((made.path / ".copier-answers.yml").read_text())
    assert (recorded["_commit"], recorded["_src_path"]) == ("1.1", str(cache / "project-template"))
    with pytest.raises(np.ProjectError, match="uncommitted changes"):
        np.update_project(made.path, cache_dir=cache, template=template, version="1.1", say=lambda line: None)
    git(made.path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "template 1.1")
    with pytest.raises(np.ProjectError, match=f"run the update with MLSTREAM_CACHE_DIR={cache}$"):
        np.update_project(made.path, cache_dir=tmp_path / "elsewhere", template=template, say=lambda line: None)


def test_project_commands_outside_a_project_say_where_to_go(tmp_path):
    with pytest.raises(np.ProjectError, match="is not inside a project made by 'mlstream new-project'"):
        np.find_project(tmp_path)
