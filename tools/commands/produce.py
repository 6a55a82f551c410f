"""``mlstream produce``: a dataset, or a CSV file, played into Kafka, labels following later."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from mlstream.kafka import problems
from mlstream.lineage.feeds import FeedLineage
from mlstream.settings import Settings
from producers.csv_feed import produce_csv
from producers.datasets import examples, source_name
from producers.feed import KafkaFeedSink, play
from tools.commands.arguments import (CSV_FLAGS, add_command, add_csv_arguments, add_feed_arguments, feed_dataset,
                                      wants_csv)


def cmd_produce(args, settings: Settings) -> int:
    problems.check_kafka(settings)  # a clear reason now, not a lineage message spooled after 30 s
    if wants_csv(args, CSV_FLAGS + ("topic",)):
        return produce_csv_file(args, settings)
    dataset = feed_dataset(args)
    lineage = FeedLineage(settings, source=source_name(dataset), seed=args.seed,
                          started_at_ms=time.time_ns() // 1_000_000, warn=lambda line: print(line, file=sys.stderr))
    lineage.start()
    stats = play(
        examples(dataset, seed=args.seed, drift_at=args.drift_at),
        KafkaFeedSink(settings),
        dataset=dataset,
        source=source_name(dataset),
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


def produce_csv_file(args, settings: Settings) -> int:
    result = produce_csv(settings, Path(args.csv), id_column=args.id_column, label_column=args.label_column,
                         time_column=args.time_column, schema_path=Path(args.schema) if args.schema else None,
                         strict=args.strict, topic=args.topic, rate=args.rate, label_delay_s=args.label_delay,
                         limit=args.records, say=lambda line: print(line, file=sys.stderr))
    summary = result.summary()
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"{args.csv}: {summary['rows']} rows, {summary['records']} records sent to {summary['topic']} "
              f"(schema version {summary['schema_version']}), {summary['labels']} labels, "
              f"{summary['malformed']} malformed rows skipped; feature view {summary['feature_view']}")
    return 0


def add_commands(sub) -> None:
    produce = add_command(sub, "produce", cmd_produce, "play a dataset or a CSV file into Kafka, labels following "
                          "later")
    add_feed_arguments(produce, "stop after N records (default: whole dataset or file; endless datasets need it or "
                       "run until Ctrl-C)")
    produce.add_argument("--seed", type=int, default=42, help="seed of synthetic datasets; part of record ids")
    produce.add_argument("--drift-at", type=int, default=5000, help="record index where synthetic concept drift starts")
    produce.add_argument("--json", action="store_true", help="print the feed's figures as JSON at the end")
    csv = add_csv_arguments(
        produce, "The record schema is inferred from the file (or given by --schema), "
        "registered under TOPIC-value (BACKWARD), and a feature view reading it is stored as config "
        "featureview.NAME (NAME: the file's stem); then the rows are played, each label --label-delay seconds "
        "later. Malformed rows are named by line and skipped. See docs/feature-views.md.")
    csv.add_argument("--topic", default=None, help="the topic of the records (default: PREFIX + NAME)")
    csv.add_argument("--strict", action="store_true", help="stop at the first malformed row, sending nothing")
