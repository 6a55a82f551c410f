"""The ``mlstream`` command: one entry point, a subcommand for each job.

Every setting comes from the active profile (``--profile``, ``--config``; see
``mlstream/profiles.py``), each overridden by its ``MLSTREAM_*`` variable (see
``mlstream/settings.py``); flags cover what changes from run to run. Each command
group lives in its own module under ``tools/commands/``; this module assembles them,
and turns the failures a user can act on into one line each (``mlstream/kafka/problems.py``).
Passwords in URLs are masked in every log line and error message (``mlstream/redaction.py``).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from mlstream.kafka import problems
from mlstream.kafka.clients import LIBRDKAFKA_LOG
from mlstream.profiles import SECURE_LOCAL_DEFAULTS
from mlstream.redaction import install_log_masking, mask_secrets
from mlstream.settings import DEFAULTS, Settings
from tools.commands import (app, bench, chaos, config, demo, experiments, init, lineage, linkage, metrics,
                            models, produce, project, security, services, spark, train)

#: In the order ``mlstream --help`` lists their commands.
COMMAND_GROUPS = (services, init, produce, app, demo, project, config, security, lineage, train, spark, models,
                  linkage, metrics, experiments, bench, chaos)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mlstream",
        description="Online ML on live Kafka streams: Avro records in, river predictions, metrics and "
        "Atlas lineage out.",
        epilog="Settings come from the profile (mlstream.toml: see docs/clusters.md), each overridden by its "
        "environment variable: " + ", ".join(sorted(DEFAULTS)) + "; the secure-local broker's ports: "
        + ", ".join(sorted(SECURE_LOCAL_DEFAULTS)) + ". Start with 'mlstream demo'.",
    )
    parser.add_argument("--profile", default="", metavar="NAME",
                        help="the connection profile every command uses: local (default), secure-local, or one of "
                        "the settings file's (default: MLSTREAM_PROFILE)")
    parser.add_argument("--config", default="", metavar="FILE",
                        help="the settings file with the profiles (default: MLSTREAM_CONFIG, else ./mlstream.toml, "
                        "else ~/.config/mlstream/mlstream.toml)")
    parser.add_argument("--verbose", action="store_true",
                        help="show the Kafka clients' own log lines (connection retries) and tracebacks")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in COMMAND_GROUPS:
        group.add_commands(sub)
    return parser


def show_client_logs(verbose: bool) -> None:
    """librdkafka's own lines (a refused connection, every second) reach the user only with --verbose."""
    LIBRDKAFKA_LOG.propagate = False
    if verbose:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        LIBRDKAFKA_LOG.addHandler(handler)
        LIBRDKAFKA_LOG.setLevel(logging.DEBUG)


def main(argv: list[str] | None = None) -> int:
    install_log_masking()
    args = build_parser().parse_args(argv)
    show_client_logs(args.verbose)
    settings = None
    try:
        settings = Settings.from_env(profile=args.profile, config=args.config)
        # Processes a command starts (the demo's app, the lineage service) take the same profile.
        os.environ.update({"MLSTREAM_PROFILE": settings.profile, "MLSTREAM_CONFIG": settings.config_file})
        return args.func(args, settings)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `mlstream ... | head` closed our output: nothing more to say, nowhere to say it
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except Exception as err:
        problem = problems.explain(err, settings)
        if problem is None or args.verbose:
            raise
        print(f"mlstream {args.command}: error: {mask_secrets(problem)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
