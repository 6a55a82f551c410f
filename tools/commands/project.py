"""``mlstream new-project NAME`` and ``mlstream project apply | update | run``: a streaming ML project of its own,
made from mlstream's template (copier), set up on the broker and registry, and kept up with the template."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from mlstream.errors import AccessDenied, UserError
from mlstream.kafka import problems
from mlstream.settings import Settings
from tools import new_project as np
from tools.commands.arguments import add_command
from tools.project_apply import Project, apply, is_secured


def cmd_new_project(args, settings: Settings) -> int:
    np.check_project_name(args.name)
    into = Path(args.into) if args.into else Path.cwd() / args.name
    if not args.defaults and not sys.stdin.isatty():
        raise np.ProjectError("no terminal to ask the template's questions on: give --defaults (and --answers FILE "
                              "for answers of your own)")
    answers = np.project_answers(args.name, teams=args.team or [], profile=args.profile_answer,
                                 answers_file=Path(args.answers) if args.answers else None,
                                 directory=Path(args.directory) if args.directory else None)
    made = np.new_project(args.name, into, answers, cache_dir=settings.cache_dir, defaults=args.defaults,
                          say=lambda line: print(line, file=sys.stderr))
    print(f"made {made.path} from template {made.version}: {len(made.files)} files, committed to its own git "
          f"repository. Next:\n  cd {made.path}\n  make test      # or: mlstream project apply, then make demo")
    return 0


def cmd_project(args, settings: Settings) -> int:
    folder = np.find_project(Path.cwd())
    if args.action == "update":
        old, new = np.update_project(folder, cache_dir=settings.cache_dir)
        if old != new:
            print(f"{folder.name}: template {old} -> {new}; review with 'git diff', then commit")
        return 0
    project = Project.load(folder)
    if args.action == "run":
        command = args.command[1:] if args.command[:1] == ["--"] else args.command
        if not command:
            raise np.ProjectError("project run needs a command, e.g. 'mlstream project run -- mlstream app'")
        env = os.environ | project.environment() | {"MLSTREAM_PROFILE": args.profile or project.profile}
        try:
            return subprocess.run(command, cwd=folder, env=env).returncode
        except FileNotFoundError:
            raise np.ProjectError(f"project run: no program {command[0]!r} on PATH") from None
    print(f"project {project.name} (profile {args.profile or project.profile}, topic prefix "
          f"{project.settings.get('MLSTREAM_TOPIC_PREFIX', settings.topics.prefix)}):", flush=True)
    settings = project.settings_for(args.profile, args.config)
    try:
        apply(project, settings, dry_run=args.dry_run)
    except Exception as err:
        # said with the project's profile (its user, its broker), not the one mlstream started with
        problem = problems.explain(err, settings)
        if problem is None:
            raise
        if isinstance(err, AccessDenied) and is_secured(settings):
            problem += ("; on secure-local, 'make up' (mlstream project run -- mlstream up) grants the client user "
                        "the project's topic prefix and app id")
        raise UserError(problem) from err
    return 0


def add_commands(sub) -> None:
    new = add_command(sub, "new-project", cmd_new_project, "make a streaming ML project from mlstream's template: "
                      "schema, feature view, model spec, lineage, policies, AMP tasks, Makefile, tests (see "
                      "docs/new-project.md)")
    new.add_argument("name", help="the project's name: lower-case letters, digits and '-', starting with a letter")
    new.add_argument("--team", action="append", metavar="T", help="a team working on it: a group of the users "
                     "directory (repeat for more; the first owns it)")
    new.add_argument("--profile", dest="profile_answer", default=None, metavar="P",
                     help="the connection profile the project's commands use (default: local)")
    new.add_argument("--defaults", action="store_true", help="ask nothing: every question not answered by a flag or "
                     "--answers takes its default")
    new.add_argument("--answers", metavar="FILE", default=None, help="a YAML file of answers (question: answer), "
                     "e.g. 'topic_prefix: shop.churn.'")
    new.add_argument("--into", metavar="DIR", default=None, help="the folder to make (absent or empty; default: "
                     "./NAME)")
    new.add_argument("--directory", metavar="FILE", default=None, help="the users directory whose groups are the "
                     "teams (default: mlstream's teams-directory.yaml: ds-team-a, ds-team-b, ml-platform)")
    project = add_command(sub, "project", cmd_project, "inside a project made by 'mlstream new-project': set it "
                          "up on the broker and registry (apply), bring in a newer template (update), run a "
                          "command with its settings (run)")
    project_sub = project.add_subparsers(dest="action", required=True, metavar="ACTION")
    apply_parser = project_sub.add_parser("apply", help="create its topics, register its schemas (BACKWARD), "
                                          "store its configs, apply its policies (secured brokers), report its "
                                          "lineage; prints what changed; idempotent",
                                          description="idempotent: a second run prints that nothing changed")
    apply_parser.add_argument("--dry-run", action="store_true", help="print what would change, change nothing")
    project_sub.add_parser("update", help="merge the template of this mlstream into the project (copier's 3-way "
                           "update: your edits are kept; conflicts are marked inline); commit first")
    run = project_sub.add_parser("run", help="run COMMAND with the project's settings (topic prefix, app id, "
                                 "model, feature view; its folder on PYTHONPATH), e.g. -- mlstream app")
    run.add_argument("command", nargs=argparse.REMAINDER, metavar="COMMAND",
                     help="the program and its arguments, after '--'")
