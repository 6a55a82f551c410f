"""``mlstream train``: a model build on what the records and labels topics hold now."""

from __future__ import annotations

import sys

import models
from mlstream.registry import builds
from mlstream.settings import Settings
from tools.commands.arguments import add_command


def cmd_train(args, settings: Settings) -> int:
    manifest = builds.run_build(settings, model=args.model, spec=args.spec or args.model, version=args.version,
                                say=lambda line: print(line, file=sys.stderr))
    print(manifest.to_json() if args.json else builds.manifest_path(settings, args.model, args.version))
    return 0


def add_commands(sub) -> None:
    train = add_command(sub, "train", cmd_train, "train a model build on what the records and labels topics hold "
                        "now, with exact offset ranges per split; saves the snapshot and reports ml_model_build "
                        "lineage")
    train.add_argument("--model", required=True, help="model name (its entry in the 'lineage' config gives "
                       "features, sampling and splits)")
    train.add_argument("--spec", default=None, choices=models.SPECS, help="model spec (default: the model name)")
    train.add_argument("--version", type=int, required=True, help="build version")
    train.add_argument("--json", action="store_true", help="print the build manifest as JSON")
