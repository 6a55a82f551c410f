"""Entry point for ``spark-submit``: the same jobs as ``mlstream spark``, on whatever master it names.

spark-submit owns the master, memory and packages here, so the session is taken as given::

    spark-submit --master yarn --deploy-mode client \\
      --packages org.apache.spark:spark-sql-kafka-0-10_2.13:4.2.0,org.apache.spark:spark-avro_2.13:4.2.0 \\
      spark_jobs/submit.py splits --model phishing --version 1
"""

from __future__ import annotations

import argparse
import json
import sys

from mlstream.settings import Settings
from spark_jobs.runner import add_arguments, preflight, run_job


def main(argv: list[str] | None = None) -> int:
    from pyspark.sql import SparkSession

    parser = argparse.ArgumentParser(prog="spark_jobs/submit.py", description="mlstream's Spark jobs under spark-submit")
    add_arguments(parser)
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    preflight(args, settings)
    spark = SparkSession.builder.appName(f"mlstream-{args.job}").getOrCreate()
    try:
        result = run_job(spark, args, settings)
    finally:
        spark.stop()
    print(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
