"""``mlstream demo [rollback]``: the whole pipeline on local services, with a summary."""

from __future__ import annotations

import json

from mlstream.settings import Settings
from tools.commands.arguments import add_command, add_feed_arguments
from tools.demo import run_demo


def cmd_demo(args, settings: Settings) -> int:
    if args.story == "rollback":
        # Imported here, not at the top: river's drift detectors, with scipy, scikit-learn and pandas,
        # add 1.9 s of CPU to `mlstream --help` (1.3 s).
        from tools.demo_rollback import run_rollback_demo

        summary = run_rollback_demo(settings, rate=args.rate or 250.0, auto_rollback=not args.manual_rollback)
        if args.json:
            print(json.dumps(summary, indent=2))
        return 0
    summary = run_demo(settings, dataset=args.dataset, records=args.records, rate=args.rate,
                       label_delay_s=args.label_delay)
    if args.json:
        print(json.dumps(summary, indent=2))
    return 0


def add_commands(sub) -> None:
    demo = add_command(sub, "demo", cmd_demo, "start everything, stream a dataset through the app, and print a "
                       "summary")
    add_feed_arguments(demo, "records to play (default: whole dataset, 5,000 for endless ones)")
    demo.add_argument("--json", action="store_true", help="also print the summary as JSON")
    demo.add_argument("story", nargs="?", choices=["rollback"], help="rollback: a bad build goes live on a stream, "
                      "monitoring catches it, the app rolls back, the fixed rebuild is promoted")
    demo.add_argument("--manual-rollback", action="store_true", help="rollback story: roll back by one command "
                      "instead of automatically")
