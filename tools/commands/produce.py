"""``mlstream produce``: a dataset played into the records topic, its labels following later."""

from __future__ import annotations

import json
import sys
import time

from mlstream.lineage.feeds import FeedLineage
from mlstream.settings import Settings
from producers.datasets import examples, source_name
from producers.feed import KafkaFeedSink, play
from tools.commands.arguments import add_command, add_feed_arguments


def cmd_produce(args, settings: Settings) -> int:
    lineage = FeedLineage(settings, source=source_name(args.dataset), seed=args.seed,
                          started_at_ms=time.time_ns() // 1_000_000, warn=lambda line: print(line, file=sys.stderr))
    lineage.start()
    stats = play(
        examples(args.dataset, seed=args.seed, drift_at=args.drift_at),
        KafkaFeedSink(settings),
        dataset=args.dataset,
        source=source_name(args.dataset),
        seed=args.seed,
        rate=args.rate,
        label_delay_s=args.label_delay,
        limit=args.records,
        progress=lambda line: print(line, file=sys.stderr),
    )
    lineage.finish(stats.records)
    if args.json:
        print(json.dumps(vars(stats) | {"records_per_second": stats.records_per_second}))
    return 0


def add_commands(sub) -> None:
    produce = add_command(sub, "produce", cmd_produce, "play a dataset into the records topic, labels following later")
    add_feed_arguments(produce, "stop after N records (default: whole dataset; endless datasets need it or run "
                       "until Ctrl-C)")
    produce.add_argument("--seed", type=int, default=42, help="seed of synthetic datasets; part of record ids")
    produce.add_argument("--drift-at", type=int, default=5000, help="record index where synthetic concept drift starts")
    produce.add_argument("--json", action="store_true", help="print the feed's figures as JSON at the end")
