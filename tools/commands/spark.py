"""``mlstream spark <job>``: the PySpark jobs on the project's topics, in a local Spark session."""

from __future__ import annotations

from mlstream.settings import Settings
from spark_jobs import cli as spark_cli
from tools.commands.arguments import add_command


def cmd_spark(args, settings: Settings) -> int:
    return spark_cli.run(args, settings)


def add_commands(sub) -> None:
    spark_cli.add_arguments(add_command(sub, "spark", cmd_spark, "PySpark jobs on the same topics: decoded tables, "
                                        "predictions as a table, training splits, warm-start, scoring with metrics, "
                                        "a benchmark"))
