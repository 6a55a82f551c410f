"""The ``mlstream`` command: one entry point, a subcommand for each job.

Every setting comes from ``MLSTREAM_*`` environment variables (see
``mlstream/settings.py``); flags cover what changes from run to run.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from mlstream.errors import UserError
from mlstream.settings import DEFAULTS, Settings


def cmd_up(args, settings: Settings) -> int:
    from tools import local_services

    for service in local_services.up(settings):
        print(f"{service.name}: {service.url} (pid {service.pid}, log {service.log_path})")
    return 0


def cmd_down(args, settings: Settings) -> int:
    from tools import local_services
    from apps.lineage_service.service import stop_background

    if stop_background(settings):  # the demo leaves it running; it reads from the Kafka we stop
        print("Stopped the lineage service.")
    local_services.down(settings)
    return 0


def cmd_status(args, settings: Settings) -> int:
    from tools import local_services

    services = local_services.status(settings)
    if args.json:
        print(json.dumps([vars(s) | {"log_path": str(s.log_path)} for s in services], indent=2))
    else:
        for s in services:
            state = "healthy" if s.healthy else ("running, not answering" if s.running else "stopped")
            print(f"{s.name:16} {state:24} {s.url}  pid={s.pid or '-'}  log={s.log_path}")
    return 0 if all(s.healthy for s in services) else 1


def cmd_init(args, settings: Settings) -> int:
    from mlstream.kafka.topics import init

    result = init(settings)
    if args.json:
        print(json.dumps(result, indent=2))
    return 0


def cmd_produce(args, settings: Settings) -> int:
    from mlstream.lineage.feeds import FeedLineage
    from producers.datasets import examples, source_name
    from producers.feed import KafkaFeedSink, play

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


def cmd_app(args, settings: Settings) -> int:
    # Imported here: the app's modules (river, Faust) take seconds to import; `mlstream` alone, 0.4 s.
    from faust import Worker

    from apps.scorer.app import ScorerApp

    Worker(ScorerApp(settings).app, loglevel=args.loglevel).execute_from_commandline()
    return 0


def cmd_demo(args, settings: Settings) -> int:
    from tools.demo import run_demo

    if args.story == "rollback":
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


def cmd_config(args, settings: Settings) -> int:
    from mlstream import config_store

    store = config_store.open_config_store(settings, args.folder)
    if args.action == "put":
        text = sys.stdin.read() if args.file == "-" else open(args.file, encoding="utf-8", newline="").read()
        if args.name.split(".")[0] == "lineage":  # lineage configs must pass their schema before they are stored
            from mlstream.lineage.config import load_lineage_yaml

            load_lineage_yaml(text, args.file)
        before = store.history(args.name)
        version = store.put(args.name, text)
        state = "unchanged" if before and before[-1].version == version else "stored"
        print(f"{args.name}: version {version} ({state})")
    elif args.action == "get":
        sys.stdout.write(store.get(args.name, args.version).text)
    elif args.action == "history":
        history = store.history(args.name)
        if args.json:
            print(json.dumps([{"version": v.version, "sha256": config_store.text_sha256(v.text),
                               "bytes": len(v.text.encode())} for v in history], indent=2))
        for v in [] if args.json else history:
            first = next((line for line in v.text.splitlines() if line.strip()), "")
            print(f"v{v.version:<4} {config_store.text_sha256(v.text)[:12]}  {len(v.text.encode()):>7} bytes  {first[:60]}")
        if not history and not args.json:
            print(f"{args.name}: no versions")
    elif args.action == "diff":
        sys.stdout.write(config_store.diff(store, args.name, args.old, args.new))
    elif args.action == "rollback":
        version = config_store.rollback(store, args.name, args.version)
        print(f"{args.name}: version {version} now holds the text of version {args.version}")
    return 0


def cmd_linkage(args, settings: Settings) -> int:
    from tools.linkage_cli import run

    return run(args, settings)


def cmd_metrics(args, settings: Settings) -> int:
    from mlstream.metrics import open_store
    from mlstream.metrics.report import format_record, format_rows, tail

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
        import os

        from mlstream.metrics.materializer import materialize

        parent = os.getppid()  # the stream app runs it as a child: stop if the app is gone
        stats = materialize(settings, open_store(store_url), until_caught_up=args.once,
                            should_stop=lambda: os.getppid() != parent,
                            progress=lambda s: print(f"materialized: {vars(s)}", file=sys.stderr))
        print(json.dumps(vars(stats)) if args.json else
              f"read {stats.read}, stored {stats.stored}, duplicates skipped {stats.duplicates}, "
              f"dead-lettered {stats.dead_lettered} into {store_url}")
    return 0


def cmd_experiments(args, settings: Settings) -> int:
    from mlstream.metrics import KafkaMetricsSink, open_store
    from mlstream.metrics.experiments import compare, format_comparison, run_experiment
    from mlstream.metrics.materializer import materialize

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


def cmd_bench(args, settings: Settings) -> int:
    from tools.bench.metrics import bench_metrics

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


def cmd_models(args, settings: Settings) -> int:
    from tools.models_cli import run

    return run(args, settings)


def cmd_lineage(args, settings: Settings) -> int:
    from tools import lineage_views as views

    if args.action == "serve":
        from apps.lineage_service.service import LineageService

        service = LineageService(settings, host=args.host).start()
        print(f"lineage service: Atlas REST v2 at {service.url}/api/atlas, reading {settings.topics.atlas_hook}, "
              f"graph in {settings.state_dir / 'lineage' / 'lineage.db'}", flush=True)
        try:
            while True:
                time.sleep(30)
                print(f"lineage service: {service.consumer.applied} notifications applied, "
                      f"{service.consumer.rejected} rejected", file=sys.stderr, flush=True)
        finally:
            service.stop()
    if args.action == "stop":
        from apps.lineage_service.service import stop_background

        print("lineage service stopped" if stop_background(settings) else "no lineage service started by the demo")
        return 0
    if args.action == "deployment":
        from mlstream.lineage import lifecycle
        from mlstream.lineage.spool import lineage_emitter

        when, user, deployment = time.time_ns() // 1_000_000, "mlstream", args.deployment or settings.app_id
        if args.step == "retire":
            notes = [lifecycle.retire(args.model, deployment, retired_at_ms=when, user=user)]
        elif args.build is None:
            raise UserError(f"'lineage deployment {args.step}' needs --build VERSION")
        elif args.step == "deploy":
            notes = lifecycle.deploy(args.model, args.build, deployment, deployed_at_ms=when, user=user)
        else:
            notes = getattr(lifecycle, args.step)(args.model, args.build, deployment, deployed_at_ms=when, user=user)
        emitter = lineage_emitter(settings, key=f"deployment-{deployment}")
        for note in notes:
            emitter.emit(note)
        emitter.flush()
        print(f"{args.model} on {deployment}: {args.step} reported ({len(notes)} notification(s))")
        return 0
    client = views.atlas_client(settings)
    if args.action == "show":
        print(views.show(client, args.entity, settings.atlas_namespace, depth=args.depth))
    elif args.action == "who":
        result = views.who(client, args.dataset, settings.atlas_namespace)
        print(json.dumps(result, indent=2) if args.json else views.format_who(result))
    elif args.action == "reproduce":
        from mlstream.registry import builds

        manifest = (builds.BuildManifest.from_json(open(args.manifest, encoding="utf-8").read()) if args.manifest
                    else builds.manifest_from_lineage(client, args.build, settings.atlas_namespace))
        report = builds.reproduce(settings, manifest, args.out)
        if args.json:
            print(json.dumps(report, indent=2))
        for split, files in report.items():
            print(f"{split:10} " + "  ".join(f"{name} {r['bytes']} bytes sha256 {r['sha256'][:12]} "
                                             f"{'= build' if r['matches'] else 'DIFFERS'}" for name, r in files.items()))
        print(f"{manifest.model} v{manifest.version}: every split reproduced byte for byte in {args.out}")
    return 0


def cmd_train(args, settings: Settings) -> int:
    from mlstream.registry import builds

    manifest = builds.run_build(settings, model=args.model, spec=args.spec or args.model, version=args.version,
                                say=lambda line: print(line, file=sys.stderr))
    print(manifest.to_json() if args.json else builds.manifest_path(settings, args.model, args.version))
    return 0


def cmd_spark(args, settings: Settings) -> int:
    from spark_jobs.cli import run

    return run(args, settings)


def build_parser() -> argparse.ArgumentParser:
    from producers.datasets import DATASETS

    parser = argparse.ArgumentParser(
        prog="mlstream",
        description="Online ML on live Kafka streams: Avro records in, river predictions, metrics and "
        "Atlas lineage out.",
        epilog="Settings come from environment variables: "
        + ", ".join(sorted(DEFAULTS))
        + ". Start with 'mlstream demo'.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name, func, help_text):
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(func=func)
        return p

    add("up", cmd_up, "start the local Kafka broker and Schema Registry (no Docker); a no-op when they run")
    add("down", cmd_down, "stop the local services started by 'up', and the lineage service the demo started")
    add("status", cmd_status, "show whether the local services run and answer").add_argument(
        "--json", action="store_true", help="print JSON")
    add("init", cmd_init, "create the topics and register their Avro schemas; safe to repeat").add_argument(
        "--json", action="store_true", help="print what was created as JSON")

    # argparse formats help with %: Shuttle's "7% anomalies" broke every --help that listed it
    dataset_help = "; ".join(f"{name}: {desc}" for name, (desc, _) in DATASETS.items()).replace("%", "%%")

    def add_feed_arguments(parser: argparse.ArgumentParser, records_help: str) -> None:
        parser.add_argument("--dataset", default="phishing", choices=sorted(DATASETS), help=dataset_help)
        parser.add_argument("--records", type=int, default=None, help=records_help)
        parser.add_argument("--rate", type=float, default=0.0, help="records per second (0: as fast as possible)")
        parser.add_argument("--label-delay", type=float, default=1.0, help="seconds between a record and its label")

    produce = add("produce", cmd_produce, "play a dataset into the records topic, labels following later")
    add_feed_arguments(produce, "stop after N records (default: whole dataset; endless datasets need it or run "
                       "until Ctrl-C)")
    produce.add_argument("--seed", type=int, default=42, help="seed of synthetic datasets; part of record ids")
    produce.add_argument("--drift-at", type=int, default=5000, help="record index where synthetic concept drift starts")
    produce.add_argument("--json", action="store_true", help="print the feed's figures as JSON at the end")

    app = add("app", cmd_app, "run the Faust stream app (scores records, learns from labels) until stopped")
    app.add_argument("--loglevel", default="info", choices=["debug", "info", "warning", "error"])

    demo = add("demo", cmd_demo, "start everything, stream a dataset through the app, and print a summary")
    add_feed_arguments(demo, "records to play (default: whole dataset, 5,000 for endless ones)")
    demo.add_argument("--json", action="store_true", help="also print the summary as JSON")
    demo.add_argument("story", nargs="?", choices=["rollback"], help="rollback: a bad build goes live on a stream, "
                      "monitoring catches it, the app rolls back, the fixed rebuild is promoted")
    demo.add_argument("--manual-rollback", action="store_true", help="rollback story: roll back by one command "
                      "instead of automatically")

    config = add("config", cmd_config, "versioned YAML configs (lineage, models) kept in the Schema Registry")
    config.add_argument("--folder", default=None, help="use configs in this folder instead of the registry")
    config_sub = config.add_subparsers(dest="action", required=True, metavar="ACTION")
    put = config_sub.add_parser("put", help="store FILE ('-': stdin) as the newest version of NAME")
    put.add_argument("name")
    put.add_argument("file")
    get = config_sub.add_parser("get", help="print a version of NAME (default: the latest)")
    get.add_argument("name")
    get.add_argument("--version", type=int, default=None)
    history = config_sub.add_parser("history", help="list the versions of NAME")
    history.add_argument("name")
    history.add_argument("--json", action="store_true", help="print JSON")
    diff = config_sub.add_parser("diff", help="unified diff from version OLD to NEW (default: the latest)")
    diff.add_argument("name")
    diff.add_argument("old", type=int)
    diff.add_argument("new", type=int, nargs="?", default=None)
    rollback = config_sub.add_parser("rollback", help="store the text of VERSION again as the newest version")
    rollback.add_argument("name")
    rollback.add_argument("version", type=int)

    lineage = add("lineage", cmd_lineage, "Atlas lineage: the embedded lineage service, graphs, who used a dataset")
    lineage_sub = lineage.add_subparsers(dest="action", required=True, metavar="ACTION")
    serve = lineage_sub.add_parser("serve", help="consume ATLAS_HOOK into an embedded graph and serve Atlas REST v2 "
                                   "on MLSTREAM_LINEAGE_PORT (for when there is no Atlas)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    lineage_sub.add_parser("stop", help="stop the lineage service that 'mlstream demo' left running")
    deployment = lineage_sub.add_parser("deployment", help="report a deployment's lifecycle: deploy, redeploy or "
                                        "roll back a build, retire it (history is kept)")
    deployment.add_argument("step", choices=["deploy", "redeploy", "rollback", "retire"])
    deployment.add_argument("--model", required=True)
    deployment.add_argument("--build", type=int, default=None, help="build version served (not for retire)")
    deployment.add_argument("--deployment", default=None, help="deployment name (default: MLSTREAM_APP_ID)")
    show = lineage_sub.add_parser("show", help="print the upstream and downstream graph of an entity (a guid, "
                                  "type:qualifiedName, or a qualifiedName/topic such as mlstream.predictions)")
    show.add_argument("entity")
    show.add_argument("--depth", type=int, default=5, help="processes to follow each way (default: %(default)s)")
    who = lineage_sub.add_parser("who", help="list the processes that produced and consumed a dataset, and when")
    who.add_argument("dataset")
    who.add_argument("--json", action="store_true", help="print JSON")
    reproduce = lineage_sub.add_parser("reproduce", help="write out the exact train/validation/test records of a "
                                       "model build (its CRN or <model>/<version>) and check them against its manifest")
    reproduce.add_argument("build")
    reproduce.add_argument("--out", required=True, help="folder for <split>/records.bin, labels.bin, order.txt")
    reproduce.add_argument("--manifest", default=None, help="read the build manifest from this file, not the lineage")
    reproduce.add_argument("--json", action="store_true", help="also print the per-file report as JSON")

    import models

    train = add("train", cmd_train, "train a model build on what the records and labels topics hold now, with "
                "exact offset ranges per split; saves the snapshot and reports ml_model_build lineage")
    train.add_argument("--model", required=True, help="model name (its entry in the 'lineage' config gives "
                       "features, sampling and splits)")
    train.add_argument("--spec", default=None, choices=models.SPECS, help="model spec (default: the model name)")
    train.add_argument("--version", type=int, required=True, help="build version")
    train.add_argument("--json", action="store_true", help="print the build manifest as JSON")

    from spark_jobs.cli import add_arguments as add_spark_arguments

    add_spark_arguments(add("spark", cmd_spark, "PySpark jobs on the same topics: decoded tables, predictions as "
                            "a table, training splits, warm-start, scoring with metrics, a benchmark"))

    from tools.models_cli import add_arguments as add_models_arguments

    add_models_arguments(add("models", cmd_models, "model registry: builds (trained snapshots), hot deploy, "
                             "rollback (redeploy) and rebuild"))

    from tools.linkage_cli import add_arguments as add_linkage_arguments

    add_linkage_arguments(add("linkage", cmd_linkage, "record linkage over live feeds: produce person records, "
                              "run the linkage app, review pairs for its classifier, evaluate it against a batch baseline"))

    store_help = "metrics store: postgresql://... or a SQLite file (default: MLSTREAM_METRICS_STORE, else <state>/metrics/metrics.db)"
    metrics = add("metrics", cmd_metrics, "CML-style model metrics: read them back, tail the metrics topic, "
                  "materialize it into the store")
    metrics_sub = metrics.add_subparsers(dest="action", required=True, metavar="ACTION")
    read = metrics_sub.add_parser("read", help="rows as read_metrics returns them (table, or --json in CML's shape)")
    read.add_argument("--model-deployment-crn", help="only this deployment")
    read.add_argument("--model-crn", help="only this model")
    read.add_argument("--model-build-crn", help="only this build")
    read.add_argument("--start-timestamp-ms", type=int, default=0, help="rows starting at or after (epoch ms)")
    read.add_argument("--end-timestamp-ms", type=int, default=None, help="rows ending at or before (default: now)")
    read.add_argument("--limit", type=int, default=None, help="only the last N rows")
    read.add_argument("--store", help=store_help)
    read.add_argument("--json", action="store_true", help='print {"metrics": [...]} as read_metrics returns it')
    tail_parser = metrics_sub.add_parser("tail", help="print metric records as they reach the metrics topic (Ctrl-C stops)")
    tail_parser.add_argument("--from-beginning", action="store_true", help="start at the topic's first record")
    tail_parser.add_argument("--json", action="store_true", help="one JSON object per line")
    mat = metrics_sub.add_parser("materialize", help="copy the metrics topic into the store (the app does this too)")
    mat.add_argument("--once", action="store_true", help="stop when caught up instead of running until Ctrl-C")
    mat.add_argument("--store", help=store_help)
    mat.add_argument("--json", action="store_true", help="print the counts as JSON")

    experiments = add("experiments", cmd_experiments, "offline runs of model specs over a replay of the records "
                      "topic, tracked with the metrics API, and their comparison")
    exp_sub = experiments.add_subparsers(dest="action", required=True, metavar="ACTION")
    exp_run = exp_sub.add_parser("run", help="replay the records topic (with its labels) through each spec")
    exp_run.add_argument("--name", required=True, help="experiment name; runs of one name are compared together")
    exp_run.add_argument("--spec", action="append", required=True, help="a model spec from models/ (repeat for several)")
    exp_run.add_argument("--max-records", type=int, default=None, help="replay only the first N labelled records")
    exp_run.add_argument("--store", help=store_help)
    exp_run.add_argument("--json", action="store_true", help="print the runs' figures as JSON")
    exp_cmp = exp_sub.add_parser("compare", help="show runs side by side")
    exp_cmp.add_argument("--name", default=None, help="one experiment (default: all)")
    exp_cmp.add_argument("--store", help=store_help)
    exp_cmp.add_argument("--json", action="store_true", help="print the runs as JSON")

    bench = add("bench", cmd_bench, "benchmarks that print figures side by side with a baseline")
    bench_sub = bench.add_subparsers(dest="target", required=True, metavar="TARGET")
    bench_metrics = bench_sub.add_parser("metrics", help="the stream app's throughput with per-prediction metrics "
                                         "tracking off and on, in one run")
    bench_metrics.add_argument("--dataset", default="bananas", choices=sorted(DATASETS), help=dataset_help)
    bench_metrics.add_argument("--records", type=int, default=5000, help="records per run")
    bench_metrics.add_argument("--repeat", type=int, default=2, help="runs of each mode, alternating; the best "
                               "of each is compared (default: %(default)s)")
    bench_metrics.add_argument("--json", action="store_true", help="print the figures as JSON")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args, Settings.from_env())
    except UserError as err:
        print(f"mlstream {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
