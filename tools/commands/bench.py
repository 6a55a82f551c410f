"""``mlstream bench metrics``: benchmarks that print figures side by side with a baseline."""

from __future__ import annotations

import json
import sys

from mlstream.settings import Settings
from producers.datasets import DATASETS
from tools.bench.metrics import bench_metrics
from tools.commands.arguments import DATASET_HELP, add_command


def cmd_bench(args, settings: Settings) -> int:
    result = bench_metrics(settings, dataset=args.dataset, records=args.records, repeat=args.repeat,
                           say=lambda line: print(line, file=sys.stderr))
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for mode in ("off", "on"):
            r = result[f"metrics_{mode}"]
            print(f"metrics {mode:3} (best of {result['repeat']}): {r['scoring_records_per_second']} predictions/s scoring, "
                  f"{r['end_to_end_records_per_second']} records/s end to end (incl. labels)")
        print(f"slowdown with metrics on: {result['scoring_slowdown_percent']}% scoring, "
              f"{result['end_to_end_slowdown_percent']}% end to end")
    return 0


def add_commands(sub) -> None:
    bench = add_command(sub, "bench", cmd_bench, "benchmarks that print figures side by side with a baseline")
    bench_sub = bench.add_subparsers(dest="target", required=True, metavar="TARGET")
    bench_metrics = bench_sub.add_parser("metrics", help="the stream app's throughput with per-prediction metrics "
                                         "tracking off and on, in one run")
    bench_metrics.add_argument("--dataset", default="bananas", choices=sorted(DATASETS), help=DATASET_HELP)
    bench_metrics.add_argument("--records", type=int, default=5000, help="records per run")
    bench_metrics.add_argument("--repeat", type=int, default=2, help="runs of each mode, alternating; the best "
                               "of each is compared (default: %(default)s)")
    bench_metrics.add_argument("--json", action="store_true", help="print the figures as JSON")
