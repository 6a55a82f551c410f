"""What several command groups' parsers share: adding a command, the dataset, feed and CSV flags, the store flag."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from mlstream.errors import UserError
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


DEFAULT_DATASET = "phishing"


def feed_dataset(args: argparse.Namespace) -> str:
    """The dataset a command without --csv plays: --dataset, else the default."""
    return args.dataset or DEFAULT_DATASET


def add_feed_arguments(parser: argparse.ArgumentParser, records_help: str, rate: float | None = 0.0,
                       label_delay: float = 1.0, rate_help: str = "default: %(default)s") -> None:
    # No default here: a --dataset given beside --csv FILE is refused, not silently ignored (see feed_dataset).
    parser.add_argument("--dataset", default=None, choices=sorted(DATASETS),
                        help=f"default: {DEFAULT_DATASET}; " + DATASET_HELP)
    parser.add_argument("--records", type=int, default=None, help=records_help)
    parser.add_argument("--rate", type=float, default=rate,
                        help=f"records per second (0: as fast as possible; {rate_help})")
    parser.add_argument("--label-delay", type=float, default=label_delay,
                        help="seconds between a record and its label (default: %(default)s)")


#: The flags that go with --csv FILE (argument names).
CSV_FLAGS = ("id_column", "label_column", "time_column", "schema")


def add_csv_arguments(parser: argparse.ArgumentParser, description: str) -> argparse._ArgumentGroup:
    """--csv FILE and its columns (and --schema), in a group of their own; returned for a command's own extras."""
    csv = parser.add_argument_group("a CSV file instead of a dataset", description)
    csv.add_argument("--csv", metavar="FILE", default=None, help="a CSV file with a header line")
    csv.add_argument("--id-column", metavar="C", default=None, help="the column of record ids (unique per row)")
    csv.add_argument("--label-column", metavar="L", default=None, help="the column of labels")
    csv.add_argument("--time-column", metavar="T", default=None,
                     help="the column of event times (epoch ms or ISO 8601; default: the time each row is sent)")
    csv.add_argument("--schema", metavar="FILE.avsc", default=None,
                     help="the record schema to use instead of inferring one (columns match fields by name; "
                          "'a.b' is field b of record field a)")
    return csv


def wants_csv(args: argparse.Namespace, flags: tuple[str, ...] = CSV_FLAGS) -> bool:
    """Whether the command plays a CSV file: --csv with its id and label columns; a clear error for the CSV's
    ``flags`` without --csv, or --csv without its columns."""
    if args.csv is None:
        for flag in flags:
            if getattr(args, flag) is not None:
                raise UserError(f"--{flag.replace('_', '-')} goes with --csv FILE")
        return False
    if getattr(args, "dataset", None) is not None:
        raise UserError(f"--csv FILE and --dataset {args.dataset} are two feeds: give one of them")
    if not args.id_column or not args.label_column:
        raise UserError("--csv FILE needs --id-column C (the record id) and --label-column L (the label, sent later)")
    return True


STORE_HELP = ("metrics store: postgresql://... or a SQLite file (default: MLSTREAM_METRICS_STORE, else "
              "<state>/metrics/metrics.db)")
