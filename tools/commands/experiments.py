"""``mlstream experiments run | compare``: offline runs of model specs over a replay of the records topic."""

from __future__ import annotations

import json
import sys

from mlstream.metrics import KafkaMetricsSink, open_store
from mlstream.metrics.materializer import materialize
from mlstream.settings import Settings
from tools.commands.arguments import STORE_HELP, add_command


def cmd_experiments(args, settings: Settings) -> int:
    # Imported here, not at the top: river's drift detectors, with scipy, scikit-learn and pandas,
    # add 2.2 s of CPU to `mlstream --help` (1.3 s).
    from mlstream.metrics.experiments import compare, format_comparison, run_experiment

    store = open_store(args.store or settings.metrics_store_url)
    if args.action == "run":
        results = run_experiment(settings, args.name, args.spec, KafkaMetricsSink(settings), args.max_records,
                                 say=lambda line: print(line, file=sys.stderr))
        materialize(settings, store, until_caught_up=True)  # so `compare` sees the runs at once
        runs = compare(store, args.name)
        print(json.dumps(results, indent=2) if args.json else format_comparison(runs))
    else:
        runs = compare(store, args.name)
        print(json.dumps(runs, indent=2) if args.json else format_comparison(runs))
    return 0


def add_commands(sub) -> None:
    experiments = add_command(sub, "experiments", cmd_experiments, "offline runs of model specs over a replay of the "
                              "records topic, tracked with the metrics API, and their comparison")
    exp_sub = experiments.add_subparsers(dest="action", required=True, metavar="ACTION")
    exp_run = exp_sub.add_parser("run", help="replay the records topic (with its labels) through each spec")
    exp_run.add_argument("--name", required=True, help="experiment name; runs of one name are compared together")
    exp_run.add_argument("--spec", action="append", required=True, help="a model spec from models/ (repeat for "
                         "several)")
    exp_run.add_argument("--max-records", type=int, default=None, help="replay only the first N labelled records")
    exp_run.add_argument("--store", help=STORE_HELP)
    exp_run.add_argument("--json", action="store_true", help="print the runs' figures as JSON")
    exp_cmp = exp_sub.add_parser("compare", help="show runs side by side")
    exp_cmp.add_argument("--name", default=None, help="one experiment (default: all)")
    exp_cmp.add_argument("--store", help=STORE_HELP)
    exp_cmp.add_argument("--json", action="store_true", help="print the runs as JSON")
