"""``mlstream up | down | status``: the local Kafka broker and Schema Registry."""

from __future__ import annotations

import json

from apps.lineage_service.service import stop_background
from mlstream.settings import Settings
from tools import local_services
from tools.commands.arguments import add_command


def cmd_up(args, settings: Settings) -> int:
    for service in local_services.up(settings):
        print(f"{service.name}: {service.url} (pid {service.pid}, log {service.log_path})")
    return 0


def cmd_down(args, settings: Settings) -> int:
    if stop_background(settings):  # the demo leaves it running; it reads from the Kafka we stop
        print("Stopped the lineage service.")
    local_services.down(settings)
    return 0


def cmd_status(args, settings: Settings) -> int:
    services = local_services.status(settings)
    if args.json:
        print(json.dumps([vars(s) | {"log_path": str(s.log_path)} for s in services], indent=2))
    else:
        for s in services:
            state = "healthy" if s.healthy else ("running, not answering" if s.running else "stopped")
            print(f"{s.name:16} {state:24} {s.url}  pid={s.pid or '-'}  log={s.log_path}")
    return 0 if all(s.healthy for s in services) else 1


def add_commands(sub) -> None:
    add_command(sub, "up", cmd_up, "start the local Kafka broker and Schema Registry (no Docker); a no-op when they run")
    add_command(sub, "down", cmd_down, "stop the local services started by 'up', and the lineage service the demo "
                "started")
    add_command(sub, "status", cmd_status, "show whether the local services run and answer").add_argument(
        "--json", action="store_true", help="print JSON")
