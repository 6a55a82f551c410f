"""``mlstream init``: the project's topics and their Avro schemas."""

from __future__ import annotations

import json

from mlstream.kafka.topics import init
from mlstream.settings import Settings
from tools.commands.arguments import add_command


def cmd_init(args, settings: Settings) -> int:
    result = init(settings)
    if args.json:
        print(json.dumps(result, indent=2))
    return 0


def add_commands(sub) -> None:
    add_command(sub, "init", cmd_init, "create the topics and register their Avro schemas; safe to repeat").add_argument(
        "--json", action="store_true", help="print what was created as JSON")
