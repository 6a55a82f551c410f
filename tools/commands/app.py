"""``mlstream app``: the Faust stream app that scores records and learns from labels."""

from __future__ import annotations

from mlstream.settings import Settings
from tools.commands.arguments import add_command


def cmd_app(args, settings: Settings) -> int:
    # Imported here, not at the top: the app's modules (Faust, river) and faust.worker add seconds of
    # CPU to `mlstream --help` (1.3 s without them).
    from faust import Worker

    from apps.scorer.app import ScorerApp

    Worker(ScorerApp(settings).app, loglevel=args.loglevel).execute_from_commandline()
    return 0


def add_commands(sub) -> None:
    app = add_command(sub, "app", cmd_app, "run the Faust stream app (scores records, learns from labels) until "
                      "stopped")
    app.add_argument("--loglevel", default="info", choices=["debug", "info", "warning", "error"])
