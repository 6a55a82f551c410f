"""``mlstream new-project`` and ``mlstream project update``: a streaming ML project made from, and kept up
with, the template in ``tools/project_template/`` (copier).

Copier updates a project with a 3-way merge: it renders the template version the project was
made with and the new one, and applies the difference to the project, keeping the user's edits.
For that it needs the template in a git repository, each version a tag. The template ships
inside the package, so :func:`template_repo` copies it into a repository of its own under the
cache dir (``<MLSTREAM_CACHE_DIR>/project-template``) and tags each new content with mlstream's
version: ``0.1.0``, then ``0.1.0.post1`` if the packaged template changes without a new release.
A project records the repository and tag it was made from (``.copier-answers.yml``).

A project is generated into a hidden folder beside its destination, committed to a git repository
of its own (copier's update wants a clean work tree to merge into), and only then moved into place:
a failure leaves nothing half-written.

    >>> check_project_name("churn"), package_name("churn-eu")
    ('churn', 'churn_eu')
    >>> check_project_name("Churn")
    Traceback (most recent call last):
    ...
    tools.new_project.ProjectError: project name 'Churn': use lower-case letters, digits and '-', starting ...
"""

from __future__ import annotations

import fcntl
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml

from mlstream.errors import UserError
from mlstream.security.directory import Directory, SecurityConfigError

Say = Callable[[str], None]

TEMPLATE_DIR = Path(__file__).resolve().parent / "project_template"
#: The teams ``--team`` may name unless ``--directory`` gives the organisation's own directory.
TEAMS_DIRECTORY = Path(__file__).resolve().parent.parent / "mlstream" / "security" / "examples" / \
    "teams-directory.yaml"
ANSWERS_FILE = ".copier-answers.yml"
PROJECT_FILE = "mlstream-project.yaml"
_PROJECT_NAME = re.compile(r"^[a-z](?:[a-z0-9-]{0,38}[a-z0-9])?$")
#: Python's and mlstream's own top-level names: a project's package of that name would shadow them.
RESERVED_NAMES = {"mlstream", "models", "apps", "tools", "producers", "linkage", "spark_jobs", "tests", "test",
                  "river", "faust", "copier"}


class ProjectError(UserError):
    pass


def check_project_name(name: str) -> str:
    if not _PROJECT_NAME.match(name):
        raise ProjectError(f"project name {name!r}: use lower-case letters, digits and '-', starting with a letter "
                           f"and not ending with '-' (at most 40), e.g. churn-eu")
    if package_name(name) in RESERVED_NAMES or package_name(name) in sys.stdlib_module_names:
        raise ProjectError(f"project name {name!r}: its Python package {package_name(name)!r} would shadow a module "
                           f"of Python or mlstream; choose another name")
    return name


def package_name(project_name: str) -> str:
    return project_name.replace("-", "_")


def mlstream_version() -> str:
    try:
        return importlib.metadata.version("mlstream")
    except importlib.metadata.PackageNotFoundError:
        return "0.0.0"


def mlstream_executable() -> str:
    """The ``mlstream`` of the installation running now: the project's Makefile runs it."""
    beside = Path(sys.executable).parent / "mlstream"
    return str(beside if beside.is_file() else Path(shutil.which("mlstream") or "mlstream").absolute())


# ----- answers ------------------------------------------------------------------------------

def team_users(directory_path: Path, teams: Iterable[str]) -> dict[str, dict]:
    """The directory entries of the users of ``teams``; a team the directory does not know is an error."""
    try:
        text = directory_path.read_text(encoding="utf-8")
    except OSError as err:
        raise ProjectError(f"cannot read the users directory {directory_path}: {err.strerror}") from None
    try:
        directory = Directory.parse(text, str(directory_path))
    except SecurityConfigError as err:
        raise ProjectError(str(err)) from None
    teams = list(teams)
    unknown = [team for team in teams if team not in directory.groups]
    if unknown:
        raise ProjectError(f"team(s) {', '.join(unknown)} not in the directory {directory_path} (its teams: "
                           f"{', '.join(sorted(directory.groups)) or 'none'}); give --directory FILE for another")
    entries = yaml.safe_load(text)["users"]
    members = sorted({user for team in teams for user in directory.members(team)})
    return {user: entries[user] or {} for user in members}


def read_answers(path: Path | None) -> dict:
    """The answers of an ``--answers FILE`` (YAML: question -> answer)."""
    if path is None:
        return {}
    try:
        answers = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise ProjectError(f"cannot read the answers file {path}: {err.strerror}") from None
    except yaml.YAMLError as err:
        raise ProjectError(f"answers file {path} is not valid YAML: {err}") from None
    if answers is None:
        return {}
    if not isinstance(answers, dict):
        raise ProjectError(f"answers file {path}: expected a mapping of question: answer")
    questions = template_questions()
    unknown = sorted(set(map(str, answers)) - set(questions))
    if unknown:
        raise ProjectError(f"answers file {path}: unknown question(s) {', '.join(unknown)}; the template asks "
                           f"{', '.join(sorted(questions))}")
    return answers


def template_questions(template: Path = TEMPLATE_DIR) -> dict[str, dict]:
    """The template's questions (copier.yml without its ``_`` settings); ``package`` is derived, not asked."""
    document = yaml.safe_load((template / "copier.yml").read_text())
    return {name: spec for name, spec in document.items() if not name.startswith("_") and spec.get("when") is not False}


def project_answers(name: str, *, teams: list[str], profile: str | None, answers_file: Path | None,
                    directory: Path | None) -> dict:
    """Every answer mlstream gives copier: the answers file, then the flags, then what mlstream knows itself."""
    answers = read_answers(answers_file)
    if "project_name" in answers and answers["project_name"] != name:
        raise ProjectError(f"the answers file names the project {answers['project_name']!r}, the command {name!r}")
    teams = teams or answers.get("teams") or []
    if isinstance(teams, str):
        teams = [teams]
    if not teams:
        raise ProjectError("give the project's team(s): --team T (a group of the users directory, e.g. ds-team-a)")
    answers |= {"project_name": name, "teams": list(teams),
                "team_users": team_users(directory or TEAMS_DIRECTORY, teams)}
    if profile:
        answers["profile"] = profile
    answers.setdefault("mlstream_bin", mlstream_executable())
    return answers


# ----- the template's repository ------------------------------------------------------------

def _git(repo: Path, *args: str, check: bool = True) -> str:
    identity = ["-c", "user.name=mlstream", "-c", "user.email=mlstream@localhost"] if args[0] in ("commit", "tag") \
        and not _has_identity(repo) else []
    done = subprocess.run(["git", *identity, "-C", str(repo), *args], capture_output=True, text=True)
    if check and done.returncode:
        raise ProjectError(f"git {' '.join(args)} in {repo} failed: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout.strip()


def _has_identity(repo: Path) -> bool:
    return bool(subprocess.run(["git", "-C", str(repo), "config", "user.email"], capture_output=True,
                               text=True).stdout.strip())


@contextmanager
def _locked(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two commands at once must not tag the same content twice
        yield


def template_repo(cache_dir: Path, source: Path = TEMPLATE_DIR, version: str | None = None) -> tuple[Path, str]:
    """The git repository of the template under ``cache_dir``, its HEAD holding ``source``; (its path, HEAD's tag).

    A content already committed keeps its tag; a new content is committed and tagged ``version``
    (default: mlstream's), or ``version.postN`` when that tag is taken.
    """
    if shutil.which("git") is None:
        raise ProjectError("git is not installed: new-project and project update need it (apt-get install git)")
    version = version or mlstream_version()
    repo = cache_dir / "project-template"
    with _locked(cache_dir / "project-template.lock"):
        if not (repo / ".git").is_dir():
            repo.mkdir(parents=True, exist_ok=True)
            _git(repo, "init", "-q", "-b", "main")
        for entry in repo.iterdir():  # the work tree becomes the packaged template exactly: removals too
            if entry.name == ".git":
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        shutil.copytree(source, repo, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
        _git(repo, "add", "-A")
        if _git(repo, "status", "--porcelain"):
            _git(repo, "commit", "-q", "-m", f"the project template of mlstream {version}")
        tags = _git(repo, "tag", "--points-at", "HEAD").split()
        if tags:
            return repo, tags[-1]
        taken = set(_git(repo, "tag", "--list").split())
        tag = version if version not in taken else next(f"{version}.post{n}" for n in range(1, 10_000)
                                                        if f"{version}.post{n}" not in taken)
        _git(repo, "tag", tag)
        return repo, tag


# ----- new-project --------------------------------------------------------------------------

@dataclass(frozen=True)
class NewProject:
    path: Path
    template: Path
    version: str
    files: list[str]


def new_project(name: str, into: Path, answers: dict, *, cache_dir: Path, defaults: bool,
                template: Path = TEMPLATE_DIR, version: str | None = None, say: Say = print) -> NewProject:
    """Generate project ``name`` as folder ``into`` (absent or empty), committed to a git repository of its own."""
    import copier  # 0.45 s of imports (its prompts, pydantic) that every other command would pay in --help

    check_project_name(name)
    destination = into.absolute()
    if destination.exists() and (not destination.is_dir() or any(destination.iterdir())):
        raise ProjectError(f"{destination} exists and is not an empty folder: choose another --into or remove it")
    repo, tag = template_repo(cache_dir, template, version)
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{destination.name}.new-", dir=destination.parent))
    try:
        say(f"new-project: rendering template {tag} ({repo}) for {name}")
        copier.run_copy(str(repo), staging / "project", data=answers, vcs_ref=tag, defaults=defaults,
                        quiet=True, unsafe=False, cleanup_on_error=True)
        files = sorted(str(p.relative_to(staging / "project")) for p in (staging / "project").rglob("*")
                       if p.is_file())
        _git(staging / "project", "init", "-q", "-b", "main")
        _git(staging / "project", "add", "-A")
        _git(staging / "project", "commit", "-q", "-m", f"{name}: made by mlstream new-project (template {tag})")
        if destination.exists():
            destination.rmdir()  # empty (checked above): the rename below needs it gone
        os.rename(staging / "project", destination)
    except Exception as err:
        if isinstance(err, UserError):
            raise
        raise ProjectError(f"new-project {name}: the template could not be rendered ({type(err).__name__}: "
                           f"{err}); nothing was written to {destination}") from err
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return NewProject(destination, repo, tag, files)


# ----- project update -----------------------------------------------------------------------

def find_project(start: Path) -> Path:
    """The generated project ``start`` is in: the nearest folder with an ``mlstream-project.yaml``."""
    for folder in (start.absolute(), *start.absolute().parents):
        if (folder / PROJECT_FILE).is_file():
            return folder
    raise ProjectError(f"{start.absolute()} is not inside a project made by 'mlstream new-project' (no "
                       f"{PROJECT_FILE} here or above); cd into one, or make one with 'mlstream new-project NAME'")


def update_project(project: Path, *, cache_dir: Path, template: Path = TEMPLATE_DIR, version: str | None = None,
                   say: Say = print) -> tuple[str, str]:
    """Bring the current template into ``project`` with copier's 3-way merge; (the old tag, the new tag)."""
    import copier  # see new_project

    answers_path = project / ANSWERS_FILE
    if not answers_path.is_file():
        raise ProjectError(f"{project} has no {ANSWERS_FILE}: it was not made by 'mlstream new-project', or the file "
                           f"was removed (it records the template version to merge from)")
    recorded = yaml.safe_load(answers_path.read_text()) or {}
    if _git(project, "rev-parse", "--is-inside-work-tree", check=False) != "true":
        raise ProjectError(f"{project} is not a git repository: copier's update merges into one ('git init', commit)")
    if _git(project, "status", "--porcelain"):
        raise ProjectError(f"{project} has uncommitted changes: commit (or stash) them first; the update merges the "
                           f"template into the last commit")
    repo, tag = template_repo(cache_dir, template, version)
    old, source = str(recorded.get("_commit", "?")), Path(str(recorded.get("_src_path", "")))
    # copier renders both versions from the repository the project names: it must be this mlstream's.
    if source != repo:
        raise ProjectError(f"the project was made from the template repository {source}, this mlstream keeps its "
                           f"own in {repo}: run the update with MLSTREAM_CACHE_DIR={source.parent}")
    if old not in _git(repo, "tag", "--list").split():
        raise ProjectError(f"template version {old} the project was made with is not in {repo} (was it "
                           f"removed?); the 3-way merge needs it")
    if old == tag:
        say(f"project update: {project.name} already has template {tag}")
        return old, tag
    say(f"project update: template {old} -> {tag}, merging into {project}")
    copier.run_update(str(project), data={"mlstream_bin": mlstream_executable()}, vcs_ref=tag, defaults=True,
                      overwrite=True, conflict="inline", quiet=True, unsafe=False, skip_answered=True)
    conflicts = _git(project, "diff", "--name-only", "--diff-filter=U", check=False).split() + [
        line for line in _git(project, "grep", "-l", "-e", "^<<<<<<< before updating", check=False).splitlines()]
    if conflicts:
        say(f"project update: conflicts to resolve (marked <<<<<<< in): {', '.join(sorted(set(conflicts)))}")
    return old, tag
