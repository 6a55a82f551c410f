"""``mlstream linkage produce | app | review | eval``: the record linkage commands."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from apps.linker.lineage import emit_feed_lineage
from apps.linker.settings import LinkageSettings, load_config
from linkage.datasets import FEBRL, load_csv, load_febrl
from mlstream.errors import UserError
from mlstream.kafka.clients import registry_client
from mlstream.settings import Settings
from producers.linkage_feed import KafkaLinkageSink, play_records
from producers.linkage_review import Reviewer, review
from tools import local_services
from tools.commands.arguments import add_command

CONFIG_HELP = ("linkage config: a YAML path, a bundled name (febrl, febrl-dedupe) or registry:NAME[@VERSION] "
               "(stored with 'mlstream config put')")
EVAL_DESCRIPTION = (
    "Link a FEBRL dataset (or your CSV files, --csv, judged by --truth-pairs or the config's truth key) through the real broker "
    "and registry, and print pairs completeness, reduction ratio, "
    "precision, recall and F1 against the true pairs, throughput and per-record latency, beside a batch baseline "
    "(the recordlinkage toolkit) on the same records. Pass 1 preloads every record and lets the app drain them "
    "(throughput, quality); pass 2 plays records at --latency-rate with the app running (latency from send to "
    "decision). Each pass uses topics, registry subjects and an app id of its own, deleted at the end.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="linkage_command", required=True, metavar="ACTION")
    dataset_help = "; ".join(f"{name}: {desc}" for name, (desc, _) in FEBRL.items())

    produce = sub.add_parser("produce", help="play person records into the linkage records topic",
                             description="Play person records into the linkage records topic: a FEBRL dataset "
                             "(sources interleaved) or a CSV file.")
    what = produce.add_mutually_exclusive_group(required=True)
    what.add_argument("--dataset", choices=sorted(FEBRL), help=dataset_help)
    what.add_argument("--csv", help="a CSV file with a header row; one record per row")
    produce.add_argument("--source", help="source name of the CSV's records (default: the file's stem)")
    produce.add_argument("--id-column", help="CSV column with the record id (default: the row number)")
    produce.add_argument("--rate", type=float, default=0.0, help="records per second (0: as fast as possible)")
    produce.add_argument("--records", type=int, default=None, help="stop after N records")
    produce.add_argument("--json", action="store_true", help="print the feed's figures as JSON at the end")

    app = sub.add_parser("app", help="run the Faust linkage app until stopped",
                         description="Run the linkage app (its own Faust app id, MLSTREAM_LINKAGE_APP_ID, default "
                         "mlstream-linkage; web on MLSTREAM_LINKAGE_WEB_PORT, default 6067, /stats/). The config "
                         "comes from MLSTREAM_LINKAGE_CONFIG or --config.")
    # dest: not `config`, which is mlstream's own --config (the settings file) and would be overwritten
    app.add_argument("--config", dest="linkage_config", default=None, help=CONFIG_HELP)
    app.add_argument("--loglevel", default="info", choices=["debug", "info", "warning", "error"])

    reviewer = sub.add_parser("review", help="a simulated reviewer: confirm or reject some candidate pairs, late",
                              description="Follow the link events and, for a share of them, send verdicts on their "
                              "best candidates to the confirmed-pairs topic after a delay, judged by the config's "
                              "truth key (test data such as FEBRL). A config with a classifier key learns from them.")
    reviewer.add_argument("--config", dest="linkage_config", default=None,
                          help=CONFIG_HELP + " (default: MLSTREAM_LINKAGE_CONFIG)")
    reviewer.add_argument("--share", type=float, default=0.2, help="share of link events reviewed (default 0.2)")
    reviewer.add_argument("--per-record", type=int, default=2, help="candidates reviewed per event (default 2)")
    reviewer.add_argument("--delay", type=float, default=2.0, help="seconds from link event to verdict (default 2)")
    reviewer.add_argument("--limit", type=int, default=None, help="stop after N verdicts")
    reviewer.add_argument("--seconds", type=float, default=None, help="stop after S seconds")

    evaluate = sub.add_parser("eval", help="link a FEBRL dataset (or your CSVs) through Kafka; quality and speed "
                              "beside a batch baseline", description=EVAL_DESCRIPTION)
    evaluate.add_argument("--dataset", default="febrl4", choices=sorted(FEBRL), help=dataset_help)
    evaluate.add_argument("--csv", action="append", default=[], metavar="FILE",
                          help="judge this CSV file instead (repeat it, one per source, to link sources); needs "
                          "--config, and --truth-pairs or a truth key in the config saying which entity each row "
                          "truly is")
    evaluate.add_argument("--source", action="append", default=[],
                          help="source name of each --csv, in the same order (default: the file's stem)")
    evaluate.add_argument("--id-column", help="CSV column with the record id (default: the row number)")
    evaluate.add_argument("--truth-pairs", metavar="FILE.csv", type=Path, default=None,
                          help="the --csv files' true pairs, a CSV with the header "
                          "source_a,record_id_a,source_b,record_id_b (instead of the config's truth key)")
    evaluate.add_argument("--config", dest="linkage_config", default=None,
                          help=CONFIG_HELP + " (default: febrl for febrl4, febrl-dedupe "
                          "for febrl1-3)")
    evaluate.add_argument("--records", type=int, default=None, help="use only the first N records")
    evaluate.add_argument("--latency-rate", type=float, default=500.0,
                          help="records/s of the latency pass (0: skip it)")
    evaluate.add_argument("--latency-records", type=int, default=5000, help="records played in the latency pass")
    evaluate.add_argument("--keep-topics", action="store_true", help="keep the passes' topics and registry subjects for inspection")
    evaluate.add_argument("--json", action="store_true", help="print the report as JSON (progress goes to stderr)")


def cmd_linkage(args, settings: Settings) -> int:
    linkage = LinkageSettings.from_env()
    if args.linkage_command == "produce":
        return produce(args, settings)
    if args.linkage_command == "review":
        config, _ = load_config(args.linkage_config or linkage.config, settings, linkage.config_store_prefix)
        if config.truth is None:
            raise UserError(f"linkage config {config.name!r} has no truth key: the simulated reviewer needs it "
                            "to judge pairs")
        reviewer = Reviewer(config.truth, share=args.share, per_record=args.per_record, delay_s=args.delay)
        review(settings, reviewer, limit=args.limit, timeout_s=args.seconds,
               progress=lambda line: print(line, file=sys.stderr, flush=True))
        return 0
    if args.linkage_command == "app":
        # Imported here, not at the top: the app's modules (Faust, river) add 3 s of CPU to `mlstream --help` (1.3 s).
        from faust import Worker

        from apps.linker.app import LinkerApp

        if args.linkage_config:
            linkage = dataclasses.replace(linkage, config=args.linkage_config)
        config, version = load_config(linkage.config, settings, linkage.config_store_prefix)
        Worker(LinkerApp(settings, linkage, config, version).app, loglevel=args.loglevel).execute_from_commandline()
        return 0
    # Imported here, not at the top: the batch baseline's pandas adds 0.5 s of CPU to `mlstream --help` (1.3 s).
    from tools.bench.linkage_eval import print_report, run_eval

    say = (lambda line: print(line, file=sys.stderr, flush=True)) if args.json else \
        (lambda line: print(line, flush=True))
    files = csv_files(args)
    local_services.up(settings, progress=say)  # a no-op when they run
    report = run_eval(settings, linkage, dataset=args.dataset, config_spec=args.linkage_config, records=args.records,
                      latency_rate=args.latency_rate, latency_records=args.latency_records,
                      keep_topics=args.keep_topics, csv_files=files, truth_pairs_file=args.truth_pairs, say=say)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_report(report)
    return 0


def add_commands(sub) -> None:
    add_arguments(add_command(sub, "linkage", cmd_linkage, "record linkage over live feeds: produce person records, "
                              "run the linkage app, review pairs for its classifier, evaluate it against a batch "
                              "baseline"))


def csv_files(args) -> list[tuple[Path, str, str | None]]:
    if len(args.source) > len(args.csv):
        raise UserError(f"{len(args.source)} --source for {len(args.csv)} --csv: give one source per file")
    files = []
    for i, name in enumerate(args.csv):
        path = Path(name)
        if not path.exists():
            raise UserError(f"no CSV file at {path}")
        files.append((path, args.source[i] if i < len(args.source) else path.stem, args.id_column))
    return files


def produce(args, settings: Settings) -> int:
    if args.dataset:
        records, name, description = load_febrl(args.dataset).records, args.dataset, FEBRL[args.dataset][0]
    else:
        path = Path(args.csv)
        if not path.exists():
            raise UserError(f"no CSV file at {path}")
        source = args.source or path.stem
        try:
            records = load_csv(path, source, args.id_column)
        except ValueError as err:
            raise UserError(str(err)) from err
        name, description = source, f"CSV file {path.name} as source {source}"
    progress = (lambda line: print(line, file=sys.stderr))
    emit_feed_lineage(settings, registry_client(settings), name, description)
    stats = play_records(records, KafkaLinkageSink(settings), rate=args.rate, limit=args.records, progress=progress)
    if args.json:
        print(json.dumps(vars(stats) | {"records_per_second": stats.records_per_second}))
    return 0
