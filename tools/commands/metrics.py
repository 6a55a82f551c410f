"""``mlstream metrics read | tail | materialize``: CML-style model metrics."""

from __future__ import annotations

import json
import os
import sys

from mlstream.metrics import open_store
from mlstream.metrics.materializer import materialize
from mlstream.metrics.report import format_record, format_rows, tail
from mlstream.settings import Settings
from tools.commands.arguments import STORE_HELP, add_command


def cmd_metrics(args, settings: Settings) -> int:
    store_url = args.store or settings.metrics_store_url
    if args.action == "read":
        store = open_store(store_url)
        result = {"metrics": store.read(args.model_deployment_crn, args.start_timestamp_ms, args.end_timestamp_ms,
                                        args.model_crn, args.model_build_crn)}
        if args.limit:
            result["metrics"] = result["metrics"][-args.limit:]
        print(json.dumps(result, indent=2) if args.json else format_rows(result["metrics"]))
        unmatched = store.unmatched_merges()
        if unmatched and not args.json:
            print(f"({unmatched} delayed metrics name a prediction uuid the store does not have (yet))", file=sys.stderr)
    elif args.action == "tail":
        tail(settings, lambda r: print(json.dumps(r, default=str) if args.json else format_record(r), flush=True),
             from_beginning=args.from_beginning)
    else:
        parent = os.getppid()  # the stream app runs it as a child: stop if the app is gone
        stats = materialize(settings, open_store(store_url), until_caught_up=args.once,
                            should_stop=lambda: os.getppid() != parent,
                            progress=lambda s: print(f"materialized: {vars(s)}", file=sys.stderr))
        print(json.dumps(vars(stats)) if args.json else
              f"read {stats.read}, stored {stats.stored}, duplicates skipped {stats.duplicates}, "
              f"dead-lettered {stats.dead_lettered} into {store_url}")
    return 0


def add_commands(sub) -> None:
    metrics = add_command(sub, "metrics", cmd_metrics, "CML-style model metrics: read them back, tail the metrics "
                          "topic, materialize it into the store")
    metrics_sub = metrics.add_subparsers(dest="action", required=True, metavar="ACTION")
    read = metrics_sub.add_parser("read", help="rows as read_metrics returns them (table, or --json in CML's shape)")
    read.add_argument("--model-deployment-crn", help="only this deployment")
    read.add_argument("--model-crn", help="only this model")
    read.add_argument("--model-build-crn", help="only this build")
    read.add_argument("--start-timestamp-ms", type=int, default=0, help="rows starting at or after (epoch ms)")
    read.add_argument("--end-timestamp-ms", type=int, default=None, help="rows ending at or before (default: now)")
    read.add_argument("--limit", type=int, default=None, help="only the last N rows")
    read.add_argument("--store", help=STORE_HELP)
    read.add_argument("--json", action="store_true", help='print {"metrics": [...]} as read_metrics returns it')
    tail_parser = metrics_sub.add_parser("tail", help="print metric records as they reach the metrics topic (Ctrl-C "
                                         "stops)")
    tail_parser.add_argument("--from-beginning", action="store_true", help="start at the topic's first record")
    tail_parser.add_argument("--json", action="store_true", help="one JSON object per line")
    mat = metrics_sub.add_parser("materialize", help="copy the metrics topic into the store (the app does this too)")
    mat.add_argument("--once", action="store_true", help="stop when caught up instead of running until Ctrl-C")
    mat.add_argument("--store", help=STORE_HELP)
    mat.add_argument("--json", action="store_true", help="print the counts as JSON")
