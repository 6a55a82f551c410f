"""``mlstream bench metrics|scorer|latency|soak|linkage``: benchmarks that print figures beside a baseline."""

from __future__ import annotations

import json
import sys

from apps.linker.settings import LinkageSettings
from linkage.datasets import FEBRL
from mlstream.settings import Settings
from producers.datasets import DATASETS
from tools.bench.metrics import bench_metrics
from tools.commands.arguments import DATASET_HELP, add_command


def cmd_bench(args, settings: Settings) -> int:
    say = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    if args.target == "scorer":
        # Imported here, not at the top: the baselines' river model and drift monitoring, with scipy,
        # add 2.5 s of CPU to `mlstream --help` (1.7 s).
        from tools.bench import scorer

        result = scorer.bench_scorer(settings, dataset=args.dataset, records=args.records, repeat=args.repeat,
                                     quix_python=args.quix_python, say=say)
        print(json.dumps(result, indent=2) if args.json else scorer.format_table(result))
        return 0
    if args.target == "latency":
        # Imported here, not at the top: as the scorer bench above, whose contenders it runs.
        from tools.bench import latency

        result = latency.bench_latency(settings, dataset=args.dataset, rate=args.rate, seconds=args.seconds,
                                       quix_python=args.quix_python, say=say)
        print(json.dumps(result, indent=2) if args.json else latency.format_table(result))
        return 0
    if args.target == "soak":
        from tools.bench import soak  # as the scorer bench above, whose round tools it shares

        result = soak.bench_soak(settings, dataset=args.dataset, minutes=args.minutes, records=args.records,
                                 rate=args.rate, interval_s=args.interval, warm_up_s=args.warm_up, say=say)
        print(json.dumps(result, indent=2) if args.json else soak.format_table(result))
        return 0
    if args.target == "linkage":
        from tools.bench import linkage  # the batch baseline's pandas and recordlinkage: only when asked

        result = linkage.bench_linkage(settings, LinkageSettings.from_env(), dataset=args.dataset,
                                       records=args.records, repeat=args.repeat, latency_rate=args.latency_rate,
                                       latency_records=args.latency_records, say=say)
        print(json.dumps(result, indent=2) if args.json else linkage.format_table(result))
        return 0
    result = bench_metrics(settings, dataset=args.dataset, records=args.records, repeat=args.repeat, say=say)
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

    bench_scorer = bench_sub.add_parser("scorer", help="the stream app's throughput beside the in-process limit, "
                                        "a plain confluent-kafka loop and Quix Streams, on one backlog")
    bench_scorer.add_argument("--records", type=int, default=50_000, help="records in the backlog "
                              "(default: %(default)s)")
    bench_scorer.add_argument("--repeat", type=int, default=3, help="rounds of each contender, alternating; median "
                              "and best are shown (default: %(default)s)")
    bench_latency = bench_sub.add_parser("latency", help="p50/p99 from a record's produce time to its prediction's, "
                                         "for each Kafka contender of 'bench scorer' at a steady rate")
    bench_latency.add_argument("--rate", type=float, default=5000.0, help="records per second (default: %(default)s)")
    bench_latency.add_argument("--seconds", type=float, default=60.0, help="how long the feed plays "
                               "(default: %(default)s)")
    bench_soak = bench_sub.add_parser("soak", help="the app's memory (RSS) every few seconds over a long steady feed "
                                      "and after a number of records")
    bench_soak.add_argument("--minutes", type=float, default=10.0, help="how long to sample at least "
                            "(default: %(default)s)")
    bench_soak.add_argument("--records", type=int, default=1_000_000, help="and until the app made this many "
                            "predictions (default: %(default)s)")
    bench_soak.add_argument("--rate", type=float, default=2000.0, help="records per second the feed plays "
                            "(default: %(default)s)")
    bench_soak.add_argument("--interval", type=float, default=10.0, help="seconds between two samples "
                            "(default: %(default)s)")
    bench_soak.add_argument("--warm-up", type=float, default=60.0, help="seconds left out of the growth figure, "
                            "while models and caches fill (default: %(default)s)")
    bench_soak.add_argument("--dataset", default="agrawal-drift", choices=sorted(n for n, (_, endless) in
                                                                            DATASETS.items() if endless),
                            help="an endless dataset (default: %(default)s)")
    bench_soak.add_argument("--json", action="store_true", help="print the figures and every sample as JSON")
    bench_linkage = bench_sub.add_parser("linkage", help="the linkage app's records/s beside the batch baseline "
                                         "(recordlinkage) in alternating rounds, and its latency at a steady rate")
    bench_linkage.add_argument("--dataset", default="febrl4", choices=sorted(FEBRL),
                               help="FEBRL dataset (default: %(default)s)")
    bench_linkage.add_argument("--records", type=int, default=None, help="use only the first N records")
    bench_linkage.add_argument("--repeat", type=int, default=3, help="rounds of each, alternating; median and best "
                               "are shown (default: %(default)s)")
    bench_linkage.add_argument("--latency-rate", type=float, default=500.0, help="records per second of the latency "
                               "pass; 0: no latency pass (default: %(default)s)")
    bench_linkage.add_argument("--latency-records", type=int, default=5000, help="records played in the latency pass "
                               "(default: %(default)s)")
    bench_linkage.add_argument("--json", action="store_true", help='print {"contenders": {"app": ..., '
                               '"batch_baseline": ...}, "latency": ...} as JSON')
    for contenders in (bench_scorer, bench_latency):
        contenders.add_argument("--dataset", default="agrawal-drift", choices=sorted(DATASETS), help=DATASET_HELP)
        contenders.add_argument("--quix-python", default=None, help="the Python of the Quix Streams environment "
                                "(default: .venv-quix/bin/python, made by 'make .venv-quix/.installed'; without "
                                "it, Quix Streams is skipped)")
        contenders.add_argument("--json", action="store_true", help='print {"contenders": {...}} as JSON')
