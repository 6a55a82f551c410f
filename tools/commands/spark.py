"""``mlstream spark <job>``: the PySpark jobs on the project's topics, in a local Spark session, and a benchmark.

The jobs and their arguments are ``spark_jobs.runner``'s (``spark-submit`` runs the same);
what is added here is the local session (master, driver memory) and ``bench``, which
compares Spark with the Python consumer (``tools/bench/spark.py``).
"""

from __future__ import annotations

import json

from mlstream.settings import Settings
from spark_jobs import runner
from spark_jobs.avro import check_topics
from spark_jobs.session import spark_session
from tools.bench import spark as spark_bench
from tools.commands.arguments import add_command

BENCH_HELP = "rows per second reading and decoding a topic: Spark beside the Python consumer, in one run"


def cmd_spark(args, settings: Settings) -> int:
    runner.preflight(args, settings)

    def start():
        runner.say(f"spark: starting {args.master} (first start downloads the Kafka and Avro connectors) ...")
        return spark_session(settings, f"mlstream-{args.job}", master=args.master, driver_memory=args.driver_memory)

    if args.job == "bench":
        check_topics(settings)  # the broker answers: a clear error instead of a traceback from its topic's creation
        result = spark_bench.run(settings, args.records, start, say=runner.say)
        print(json.dumps(result, indent=2) if args.json else spark_bench.format_result(result))
        return 0
    spark = start()
    try:
        result = runner.run_job(spark, args, settings)
    finally:
        spark.stop()
    if args.json:
        print(json.dumps(result, indent=2, default=str))
    elif args.job in ("sql", "secure-view"):
        print(result["text"])
    return 0


def add_commands(sub) -> None:
    spark = add_command(sub, "spark", cmd_spark, "PySpark jobs on the same topics: decoded tables, predictions as a "
                        "table, training splits, warm-start, scoring with metrics, a benchmark")
    spark.add_argument("--master", default="local[2]", help="Spark master (default: %(default)s)")
    spark.add_argument("--driver-memory", default="1g", help="driver memory (default: %(default)s)")
    jobs = runner.add_arguments(spark)
    bench = jobs.add_parser("bench", help=BENCH_HELP, description=BENCH_HELP)
    bench.add_argument("--records", type=int, default=1_000_000, help="records in the topic")
    bench.add_argument("--json", action="store_true", help="print the result as JSON")
