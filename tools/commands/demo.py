"""``mlstream demo [rollback]``, ``mlstream demo --csv FILE``: the whole pipeline on local services, with a summary."""

from __future__ import annotations

import json
from pathlib import Path

from mlstream.errors import UserError
from mlstream.settings import Settings
from producers.csv_feed import CsvFeed, load_csv_feed
from tools.commands.arguments import add_command, add_csv_arguments, add_feed_arguments, feed_dataset, wants_csv
from tools.demo import DEMO_LABEL_DELAY_S, DEMO_RATE, run_demo

ROLLBACK_RATE = 250.0  # records/s of the rollback story's live feed
SECURITY_RECORDS = 1000  # customers the security story's data owner publishes


def cmd_demo(args, settings: Settings) -> int:
    if args.story in ("rollback", "security") and args.csv is not None:
        feed = {"rollback": "drifting", "security": "customers"}[args.story]
        raise UserError(f"the {args.story} story plays its own {feed} feed: leave out --csv")
    if args.story == "security":
        # Imported here, not at the top: river (and with it scipy) adds seconds of CPU to `mlstream --help`.
        from tools.demo_security import print_summary, run_security_demo

        summary = run_security_demo(settings, records=args.records or SECURITY_RECORDS)
        if args.json:
            print(json.dumps(summary, indent=2))
        else:
            print_summary(summary)
        return 0
    if args.story == "rollback":
        # Imported here, not at the top: river's drift detectors, with scipy, scikit-learn and pandas,
        # add 1.9 s of CPU to `mlstream --help` (1.3 s).
        from tools.demo_rollback import run_rollback_demo

        summary = run_rollback_demo(settings, rate=args.rate or ROLLBACK_RATE, auto_rollback=not args.manual_rollback)
        if args.json:
            print(json.dumps(summary, indent=2))
        return 0
    csv = csv_feed(args)
    summary = run_demo(settings, dataset=feed_dataset(args), records=args.records,
                       rate=DEMO_RATE if args.rate is None else args.rate, label_delay_s=args.label_delay, csv=csv)
    if args.json:
        print(json.dumps(summary, indent=2))
    return 0


def csv_feed(args) -> CsvFeed | None:
    """The CSV file to play instead of a dataset, read and checked before anything starts (None: a dataset)."""
    if not wants_csv(args):
        return None
    return load_csv_feed(Path(args.csv), id_column=args.id_column, label_column=args.label_column,
                         time_column=args.time_column, schema_path=Path(args.schema) if args.schema else None)


def add_commands(sub) -> None:
    demo = add_command(sub, "demo", cmd_demo, "start everything, stream a dataset (or --csv FILE) through the app, "
                       "and print a summary")
    # Paced, labels following their records: most predictions come from a model that has learned.
    add_feed_arguments(demo, "records to play (default: whole dataset, 5,000 for endless ones)",
                       rate=None, label_delay=DEMO_LABEL_DELAY_S,
                       rate_help=f"default: {DEMO_RATE:g}, {ROLLBACK_RATE:g} for the rollback story")
    demo.add_argument("--json", action="store_true", help="also print the summary as JSON (security: instead)")
    demo.add_argument("story", nargs="?", choices=["rollback", "security"], help="rollback: a bad build goes live on "
                      "a stream, monitoring catches it, the app rolls back, the fixed rebuild is promoted; security: "
                      "on the secure-local broker, Ranger-format policies make a masked, row-filtered dataset per "
                      "team, each team trains on its own and is refused on the raw one (--json: the figures and each "
                      "principal's client settings, passwords included)")
    add_csv_arguments(demo, "As 'mlstream produce --csv' reads it: its schema inferred (or given by --schema), "
                      "registered, a feature view stored as config featureview.NAME (NAME: the file's stem); the app "
                      "scores the file through that view. Malformed rows are named by line and skipped. See "
                      "docs/feature-views.md.")
    demo.add_argument("--manual-rollback", action="store_true", help="rollback story: roll back by one command "
                      "instead of automatically")
