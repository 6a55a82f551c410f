"""``mlstream app``: the Faust stream app that scores records and learns from labels."""

from __future__ import annotations

import sys

from mlstream.features.view import load_feature_view
from mlstream.kafka import problems
from mlstream.kafka.topics import check_input_topics
from mlstream.settings import Settings
from tools.commands.arguments import add_command


def cmd_app(args, settings: Settings) -> int:
    # Imported here, not at the top: the app's modules (Faust, river) and faust.worker add seconds of
    # CPU to `mlstream --help` (1.3 s without them).
    from faust import Worker

    from apps.scorer.app import ScorerApp

    # A broker that is down, or refuses us, is said in one line now, not retried in Faust's log; so is a
    # missing or invalid view, or a topic it reads that is not there, before the worker starts. A registry
    # that does not answer is waited for: the app starts, and scores once it answers (issue 14, item 4).
    problems.check_kafka(settings)
    try:
        problems.check_registry(settings)
    except problems.ConnectionProblem as err:
        print(f"mlstream app: warning: {err}; the app starts and waits for it", file=sys.stderr)
    view = load_feature_view(settings)
    check_input_topics(settings, (view.records_topic, view.labels_topic))
    Worker(ScorerApp(settings, view).app, loglevel=args.loglevel).execute_from_commandline()
    return 0


def add_commands(sub) -> None:
    app = add_command(sub, "app", cmd_app, "run the Faust stream app (scores records, learns from labels) until "
                      "stopped")
    app.add_argument("--loglevel", default="info", choices=["debug", "info", "warning", "error"])
