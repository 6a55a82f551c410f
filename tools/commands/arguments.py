"""What several command groups' parsers share: adding a command, the dataset and feed flags, the store flag."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from mlstream.settings import Settings
from producers.datasets import DATASETS

#: A command's body: parsed arguments and settings in, exit status out.
Command = Callable[[argparse.Namespace, Settings], int]


def add_command(sub: argparse._SubParsersAction, name: str, func: Command, help_text: str) -> argparse.ArgumentParser:
    parser = sub.add_parser(name, help=help_text, description=help_text)
    parser.set_defaults(func=func)
    return parser


# argparse formats help with %: Shuttle's "7% anomalies" broke every --help that listed it
DATASET_HELP = "; ".join(f"{name}: {desc}" for name, (desc, _) in DATASETS.items()).replace("%", "%%")


def add_feed_arguments(parser: argparse.ArgumentParser, records_help: str) -> None:
    parser.add_argument("--dataset", default="phishing", choices=sorted(DATASETS), help=DATASET_HELP)
    parser.add_argument("--records", type=int, default=None, help=records_help)
    parser.add_argument("--rate", type=float, default=0.0, help="records per second (0: as fast as possible)")
    parser.add_argument("--label-delay", type=float, default=1.0, help="seconds between a record and its label")


STORE_HELP = ("metrics store: postgresql://... or a SQLite file (default: MLSTREAM_METRICS_STORE, else "
              "<state>/metrics/metrics.db)")
