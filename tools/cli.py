"""The ``mlstream`` command: one entry point, a subcommand for each job.

Every setting comes from ``MLSTREAM_*`` environment variables (see
``mlstream/settings.py``); flags cover what changes from run to run. Each command
group lives in its own module under ``tools/commands/``; this module assembles them.
"""

from __future__ import annotations

import argparse
import sys

from mlstream.errors import UserError
from mlstream.settings import DEFAULTS, Settings
from tools.commands import (app, bench, config, demo, experiments, init, lineage, linkage, metrics, models,
                            produce, services, spark, train)

#: In the order ``mlstream --help`` lists their commands.
COMMAND_GROUPS = (services, init, produce, app, demo, config, lineage, train, spark, models, linkage, metrics,
                  experiments, bench)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mlstream",
        description="Online ML on live Kafka streams: Avro records in, river predictions, metrics and "
        "Atlas lineage out.",
        epilog="Settings come from environment variables: "
        + ", ".join(sorted(DEFAULTS))
        + ". Start with 'mlstream demo'.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in COMMAND_GROUPS:
        group.add_commands(sub)
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
