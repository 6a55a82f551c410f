"""``mlstream chaos``: the fault campaign (SIGKILLs, a broker restart, a registry outage, fuzzed input), counted."""

from __future__ import annotations

import json
import sys

from mlstream.settings import Settings
from tools.commands.arguments import add_command


def cmd_chaos(args, settings: Settings) -> int:
    from tools.chaos import KEYS, run_chaos  # the app, river and the local services: not for `mlstream --help`

    options = {"scenarios": tuple(args.scenario)} if args.scenario else {}
    # With --json the report alone is on stdout, so it parses; the progress goes to stderr.
    say = (lambda line: print(line, file=sys.stderr, flush=True)) if args.json else print  # noqa: E731
    report = run_chaos(settings, kills=args.kills, records=args.records, rate=args.rate, say=say, **options)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        totals = report["totals"]
        print("chaos totals: " + ", ".join(f"{key} {totals[key]}" for key in KEYS))
    bad = report["totals"]
    return 0 if bad["lost"] == bad["unmarked_duplicates"] == bad["crashes"] == 0 else 1


def add_commands(sub) -> None:
    chaos = add_command(sub, "chaos", cmd_chaos, "run the fault campaign against the stream app on local services "
                        "and count what was lost, duplicated, dead-lettered and learned (exit 1 if anything was "
                        "lost, duplicated or crashed)")
    chaos.add_argument("--scenario", action="append", choices=["sigkill", "broker_restart", "registry_outage",
                                                               "fuzz"],
                       help="run only this scenario (repeatable; default: all)")
    chaos.add_argument("--kills", type=int, default=3, help="SIGKILLs in the sigkill scenario (default 3)")
    chaos.add_argument("--records", type=int, default=2000, help="records fed per scenario (default 2,000)")
    chaos.add_argument("--rate", type=float, default=100.0, help="records/s of each feed (default 100)")
    chaos.add_argument("--json", action="store_true", help="print the report as JSON")
