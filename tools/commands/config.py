"""``mlstream config put | get | history | diff | rollback``: versioned YAML configs kept in the Schema Registry."""

from __future__ import annotations

import json
import sys

from mlstream import config_store
from mlstream.lineage.config import load_lineage_yaml
from mlstream.settings import Settings
from tools.commands.arguments import add_command


def cmd_config(args, settings: Settings) -> int:
    store = config_store.open_config_store(settings, args.folder)
    if args.action == "put":
        text = sys.stdin.read() if args.file == "-" else open(args.file, encoding="utf-8", newline="").read()
        if args.name.split(".")[0] == "lineage":  # lineage configs must pass their schema before they are stored
            load_lineage_yaml(text, args.file)
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
    config = add_command(sub, "config", cmd_config, "versioned YAML configs (lineage, models) kept in the Schema "
                         "Registry")
    config.add_argument("--folder", default=None, help="use configs in this folder instead of the registry")
    config_sub = config.add_subparsers(dest="action", required=True, metavar="ACTION")
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
