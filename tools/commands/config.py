"""``mlstream config put | get | history | diff | rollback``: versioned YAML configs kept in the Schema Registry."""

from __future__ import annotations

import json
import sys

from mlstream import config_store
from mlstream.config_checks import check_config
from mlstream.profiles import mask
from mlstream.settings import Settings
from tools.commands.arguments import add_command


def show_profile(settings: Settings) -> dict:
    """The active profile as the clients get it, secrets masked: ``mlstream config show``."""
    return {
        "profile": settings.profile,
        "settings_file": settings.config_file or None,
        "bootstrap_servers": settings.bootstrap_servers,
        "schema_registry_url": settings.schema_registry_url,
        "kafka": {key: mask(key, value) for key, value in settings.kafka_security},
        "schema_registry": {key: mask(key, value) for key, value in settings.registry_security},
        "topics": {"prefix": settings.topics.prefix, "replication_factor": settings.replication_factor,
                   "min_insync_replicas": settings.min_insync_replicas or "broker default"},
        "state_dir": str(settings.state_dir),
        "services_dir": str(settings.local_services_dir),
    }


def cmd_config(args, settings: Settings) -> int:
    if args.action == "show":
        shown = show_profile(settings)
        if args.json:
            print(json.dumps(shown, indent=2))
            return 0
        for key, value in shown.items():
            if isinstance(value, dict):
                print(f"{key}:" + ("" if value else " (none)"))
                for inner, text in value.items():
                    print(f"  {inner} = {text}")
            else:
                print(f"{key}: {value if value is not None else '(none: built in)'}")
        return 0
    store = config_store.open_config_store(settings, args.folder)
    if args.action == "put":
        text = sys.stdin.read() if args.file == "-" else open(args.file, encoding="utf-8", newline="").read()
        check_config(store, settings.topics, args.name, text, args.file)
        before = store.history(args.name)
        version = store.put(args.name, text)
        state = "unchanged" if before and before[-1].version == version else "stored"
        print(f"{args.name}: version {version} ({state})")
    elif args.action == "get":
        sys.stdout.write(store.get(args.name, args.version).text)
    elif args.action == "history":
        history = store.history(args.name)
        if args.json:
            print(json.dumps([{"version": v.version, "sha256": config_store.text_sha256(v.text),
                               "bytes": len(v.text.encode())} for v in history], indent=2))
        for v in [] if args.json else history:
            first = next((line for line in v.text.splitlines() if line.strip()), "")
            print(f"v{v.version:<4} {config_store.text_sha256(v.text)[:12]}  {len(v.text.encode()):>7} bytes  {first[:60]}")
        if not history and not args.json:
            print(f"{args.name}: no versions")
    elif args.action == "diff":
        sys.stdout.write(config_store.diff(store, args.name, args.old, args.new))
    elif args.action == "rollback":
        version = config_store.rollback(store, args.name, args.version)
        print(f"{args.name}: version {version} now holds the text of version {args.version}")
    return 0


def add_commands(sub) -> None:
    config = add_command(sub, "config", cmd_config, "the active connection profile (show), and versioned YAML "
                         "configs (lineage, models, feature views 'featureview.NAME', Ranger policies "
                         "'security.kafka', 'security.hive' and their 'security.directory') kept in the Schema "
                         "Registry")
    config.add_argument("--folder", default=None, help="use configs in this folder instead of the registry")
    config_sub = config.add_subparsers(dest="action", required=True, metavar="ACTION")
    show = config_sub.add_parser("show", help="print the active connection profile (mlstream --profile NAME), "
                                 "secrets masked")
    show.add_argument("--json", action="store_true", help="print JSON")
    put = config_sub.add_parser("put", help="store FILE ('-': stdin) as the newest version of NAME")
    put.add_argument("name")
    put.add_argument("file")
    get = config_sub.add_parser("get", help="print a version of NAME (default: the latest)")
    get.add_argument("name")
    get.add_argument("--version", type=int, default=None)
    history = config_sub.add_parser("history", help="list the versions of NAME")
    history.add_argument("name")
    history.add_argument("--json", action="store_true", help="print JSON")
    diff = config_sub.add_parser("diff", help="unified diff from version OLD to NEW (default: the latest)")
    diff.add_argument("name")
    diff.add_argument("old", type=int)
    diff.add_argument("new", type=int, nargs="?", default=None)
    rollback = config_sub.add_parser("rollback", help="store the text of VERSION again as the newest version")
    rollback.add_argument("name")
    rollback.add_argument("version", type=int)
