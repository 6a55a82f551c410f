"""The Spark jobs' arguments and the runner that starts one in a given session.

Every job first checks what a user can fix (broker, registry, topics, schemas) and only
then starts Spark, so those errors come in a second, not after the JVM starts.
``mlstream spark <job>`` (``tools/commands/spark.py``) runs a job in a local session;
``spark_jobs/submit.py`` runs the same jobs under ``spark-submit`` on a cluster.
"""

from __future__ import annotations

import argparse
import json
import sys

from mlstream.settings import Settings
from spark_jobs import predictions, read_topic, score, secure_view, splits, warm_start
from spark_jobs.session import register_table, table_path
from spark_jobs.topics import KINDS, prepare

JOBS = {
    "read": "decode a topic into a Parquet table; undecodable values into <table>_quarantine with the reason",
    "predictions": "stream the predictions and labels topics into tables that Spark SQL queries while they grow",
    "splits": "reproducible train/validation/test tables and views (offset ranges in a manifest), up/down-sampled",
    "warm-start": "train a river model on a split table, register it as a build, optionally hot-deploy it",
    "score": "a Structured Streaming query scoring the records topic; metrics per batch through the metrics API",
    "sql": "run Spark SQL over the project's tables and views (registered and refreshed first)",
    "secure-view": "a team's secure dataset as a Spark SQL view of the raw topic: the same masks and row filter as "
                   "its secure topic (security.hive), by Spark's built-ins",
}


def say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def add_arguments(parser: argparse.ArgumentParser) -> argparse._SubParsersAction:
    """A subcommand per job, each with its options and --json; returns the subparsers for more."""
    sub = parser.add_subparsers(dest="job", required=True, metavar="JOB")
    jobs = {name: sub.add_parser(name, help=text, description=text) for name, text in JOBS.items()}
    jobs["read"].add_argument("--topic", default="records", choices=KINDS,
                              help="which project topic (default: %(default)s)")
    for name in ("predictions", "score"):
        jobs[name].add_argument("--trigger-seconds", type=float, default=5.0, help="micro-batch interval")
        jobs[name].add_argument("--available-now", action="store_true",
                                help="process what the topics hold now, then stop (default: run until Ctrl-C)")
    splits = jobs["splits"]
    splits.add_argument("--model", required=True, help="name of the training set (tables <model>_v<version>_*)")
    splits.add_argument("--version", type=int, required=True, help="version of the training set")
    splits.add_argument("--train", type=float, default=0.7, help="share of each partition for training")
    splits.add_argument("--validation", type=float, default=0.15, help="share for validation (test: the rest)")
    splits.add_argument("--sampling", default="none", choices=["none", "up", "down"], help="training split sampling")
    splits.add_argument("--ratio", type=float, default=1.0, help="smaller classes' size relative to the largest")
    splits.add_argument("--seed", type=int, default=0, help="sampling seed")
    splits.add_argument("--manifest", help="rebuild exactly the offset ranges of this earlier manifest")
    warm = jobs["warm-start"]
    warm.add_argument("--splits", required=True, metavar="NAME/VERSION", help="the training set, e.g. phishing/1")
    warm.add_argument("--model", help="registry model to add the build to (default: MLSTREAM_MODEL)")
    warm.add_argument("--spec", help="model spec from models/ (default: the model's name)")
    warm.add_argument("--deploy", action="store_true", help="hot-deploy the build to the running stream app "
                      "(MLSTREAM_APP_ID) and wait until it serves it")
    jobs["secure-view"].add_argument("--topic", required=True, help="the raw dataset topic")
    jobs["secure-view"].add_argument("--team", required=True, help="the team (a group of security.directory)")
    jobs["secure-view"].add_argument("--show", type=int, default=20, help="rows to print (default: %(default)s)")
    jobs["sql"].add_argument("query", help='e.g. "SELECT count(*) FROM mlstream.predictions_live"')
    for parser_ in jobs.values():
        parser_.add_argument("--json", action="store_true", help="print the result as JSON")
    return sub


def preflight(args, settings: Settings) -> None:
    """Clear errors for what the job needs, before Spark starts."""
    kinds = {"read": [args.job == "read" and args.topic], "predictions": ["predictions", "labels"],
             "splits": ["records", "labels"], "score": ["records", "labels"]}.get(args.job, [])
    for kind in kinds:
        prepare(settings, kind)


def register_all(spark, settings: Settings) -> list[str]:
    """Register every table folder of this database, and the stream views, in a fresh session
    (on a metastore they are registered already: nothing to do)."""
    if settings.metastore_url:
        return []
    root = table_path(settings, "x").parent
    names = [register_table(spark, settings, p.name) for p in sorted(root.iterdir())
             if p.is_dir() and any(p.iterdir())] if root.exists() else []
    if all(spark.catalog.tableExists(f"{root.name}.{t}") for t in predictions.STREAMS.values()):
        names += predictions.register_views(spark, settings)
    return names


def run_job(spark, args, settings: Settings):
    """The job itself, given a session: shared by ``mlstream spark`` and ``spark-submit``."""
    if args.job == "read":
        return read_topic.run(spark, settings, args.topic, say=say)
    if args.job == "predictions":
        return predictions.run(spark, settings, args.trigger_seconds, args.available_now, say=say)
    if args.job == "splits":
        manifest = json.loads(open(args.manifest, encoding="utf-8").read()) if args.manifest else None
        fractions = {"train": args.train, "validation": args.validation,
                     "test": round(1 - args.train - args.validation, 6)}
        sampling = {"method": args.sampling, "ratio": args.ratio, "seed": args.seed}
        return splits.run(spark, settings, args.model, args.version, fractions, sampling, manifest, say=say)
    if args.job == "warm-start":
        name, _, version = args.splits.partition("/")
        return warm_start.run(spark, settings, name, int(version or 1), args.model, args.spec, args.deploy, say=say)
    if args.job == "score":
        return score.run(spark, settings, args.trigger_seconds, args.available_now, say=say)
    if args.job == "secure-view":
        result = secure_view.run(spark, settings, args.topic, args.team, say=say)
        frame = spark.table(result["view"])
        return result | {"text": frame._jdf.showString(args.show, 40, False),
                         "sample": [row.asDict(recursive=True) for row in frame.limit(args.show).collect()]}
    if args.job == "sql":
        register_all(spark, settings)
        frame = spark.sql(args.query)
        rows = [row.asDict(recursive=True) for row in frame.limit(1000).collect()]
        return {"rows": rows, "text": frame._jdf.showString(50, 60, False)}
    raise ValueError(f"unknown job {args.job}")
