"""``mlstream models list | show | build | deploy | rollback | rebuild | retire | bench``."""

from __future__ import annotations

import argparse
import json
import sys
import time

from mlstream.config_store import open_config_store
from mlstream.errors import UserError
from mlstream.registry.control import ROLLBACK, ControlChannel, check_deployable, deploy_command
from mlstream.registry.metadata_log import open_registry
from mlstream.registry.records import CHAMPION, SHADOW
from mlstream.registry.registry import parse_ref
from mlstream.registry.training import build_settings_from_yaml, model_spec, rebuild, train_build
from mlstream.scoring.model_store import open_model_store
from mlstream.settings import Settings
from tools.bench.registry import bench, format_bench
from tools.commands.arguments import add_command


def _pairs(text: str | None, what: str) -> dict[str, float]:
    """``a=1,b=2`` -> {"a": 1.0, "b": 2.0}."""
    if not text:
        return {}
    try:
        return {k.strip(): float(v) for k, v in (item.split("=", 1) for item in text.split(","))}
    except ValueError:
        raise UserError(f"{what} {text!r}: write CLASS=NUMBER pairs separated by commas, e.g. True=0.5,False=0.5")


def _params(items: list[str] | None) -> dict:
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise UserError(f"--param {item!r}: write NAME=VALUE (VALUE as JSON, e.g. grace_period=50)")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def _sampling(args) -> dict | None:
    if args.sampling is None:
        return None
    if args.sampling == "none":
        return {"method": "none"}
    dist = _pairs(args.desired_dist, "--desired-dist")
    seed = args.seed or 0
    if not dist:
        raise UserError("--sampling under|over needs --desired-dist, e.g. --desired-dist True=0.5,False=0.5")
    return {"method": args.sampling, "desired_dist": dist, "seed": seed}


BUILD_HELP = ("train MODEL on what the records and labels topics hold now (exact offset ranges per split), "
              "store the snapshot, register the build with its manifest, report its lineage")


def training_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sampling", choices=["none", "under", "over"], default=None,
                   help="river's random under- or over-sampler around the model")
    p.add_argument("--desired-dist", help="class proportions for the sampler, e.g. True=0.5,False=0.5")
    p.add_argument("--class-weight", help="learning weight per class, e.g. True=10 (default 1)")
    p.add_argument("--seed", type=int, default=None, help="seed of the sampler")
    p.add_argument("--json", action="store_true", help="print the build as JSON")


def add_build_arguments(build: argparse.ArgumentParser) -> None:
    """The arguments of ``models build`` (and of its alias ``mlstream train``)."""
    build.add_argument("model", help="the model's name (a registry model; created on first build)")
    build.add_argument("--spec", help="a models/ spec (default: the model's, else MLSTREAM_MODEL)")
    build.add_argument("--param", action="append", help="hyper-parameter NAME=VALUE of the spec (repeat)")
    # dest: not `config`, which is mlstream's own --config (the settings file) and would be overwritten
    build.add_argument("--config", dest="build_config",
                       help="take spec, params, sampling, class_weight and seed from this versioned "
                       "config ('mlstream config put NAME FILE'; NAME or NAME@VERSION); flags override it")
    training_options(build)
    build.set_defaults(action="build")


def add_arguments(models: argparse.ArgumentParser) -> None:
    sub = models.add_subparsers(dest="action", required=True, metavar="ACTION")
    lst = sub.add_parser("list", help="every build: status, spec, sampling, test accuracy, where it serves")
    lst.add_argument("--model", help="only this model")
    lst.add_argument("--json", action="store_true", help="print JSON")
    show = sub.add_parser("show", help="one build in full: data offsets, sampling, metrics per class, snapshot")
    show.add_argument("build", help="MODEL/VERSION or a build CRN")
    show.add_argument("--json", action="store_true", help="print JSON")
    add_build_arguments(sub.add_parser("build", help=BUILD_HELP, description=BUILD_HELP))

    deploy = sub.add_parser("deploy", help="serve a build in a running app, swapped between two records")
    deploy.add_argument("build", help="MODEL/VERSION or a build CRN")
    deploy.add_argument("--shadow", action="store_true", help="score it in shadow beside the champion, not serve it")
    deploy.add_argument("--auto-rollback", action="store_true", help="roll back to the build before it when an "
                        "alert says its metric fell below the threshold")
    deploy.add_argument("--app", help="the app id (default: MLSTREAM_APP_ID)")
    deploy.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the app (default 60)")
    rollback = sub.add_parser("rollback", help="redeploy the build that served before (or --to one) from its "
                              "snapshot: seconds, no training")
    rollback.add_argument("--to", help="MODEL/VERSION to go back to (default: the previous one)")
    rollback.add_argument("--app", help="the app id (default: MLSTREAM_APP_ID)")
    rollback.add_argument("--timeout", type=float, default=60.0)
    rebuild = sub.add_parser("rebuild", help="train a build again from the exact data it recorded; with no "
                             "changes the new build must predict exactly like the old one")
    rebuild.add_argument("build", help="MODEL/VERSION or a build CRN")
    training_options(rebuild)
    retire = sub.add_parser("retire", help="mark a build retired: it can no longer be deployed")
    retire.add_argument("build", help="MODEL/VERSION or a build CRN")
    bench = sub.add_parser("bench", help="time a redeploy (command to first prediction of the new build) and a "
                           "rebuild (per 100k records), on topics of its own")
    bench.add_argument("--records", type=int, default=5000, help="records to train on and stream (default 5000)")
    bench.add_argument("--json", action="store_true", help="print the figures as JSON")


def format_build(b, deployments) -> str:
    test = b.metrics.get("test", {}).get("accuracy")
    where = ", ".join(f"{d.app_id}:{d.role}" for d in deployments if d.model == b.model and d.build_version == b.version)
    sampling = b.sampling.get("method", "none") + (f" w={b.class_weight}" if b.class_weight else "")
    return (f"{b.ref:24} {b.status:8} {b.spec:22} parent={b.parent or '-':4} {sampling:24} "
            f"test_acc={'-' if test is None else f'{test:.3f}':6} learned={b.examples_learned:<7} {where}")


def cmd_models(args, settings: Settings) -> int:
    say = lambda line: print(line, file=sys.stderr)  # noqa: E731
    registry = open_registry(settings)
    store = open_model_store(settings.model_store, settings.state_dir / "models", settings.s3_endpoint_url)
    if args.action == "list":
        builds = registry.builds(args.model)
        if args.json:
            print(json.dumps([b.to_dict() for b in builds], indent=2))
        else:
            deployments = registry.deployments()
            for b in builds:
                print(format_build(b, deployments))
            if not builds:
                print("no builds yet: 'mlstream models build MODEL --spec SPEC'")
    elif args.action == "show":
        b = registry.build(args.build)
        doc = b.to_dict() | {"crn": b.crn, "deployments": [d.to_dict() for d in registry.deployments()
                                                           if d.model == b.model and d.build_version == b.version]}
        print(json.dumps(doc, indent=2))
    elif args.action in ("build", "rebuild"):
        if args.action == "build":
            from_config, config_name = {}, ""
            if args.build_config:
                name, _, version = args.build_config.partition("@")
                kept = open_config_store(settings).get(name, int(version) if version else None)
                config_name = f"{kept.name} v{kept.version}"
                from_config = build_settings_from_yaml(kept.text, f"config {config_name}")
            spec = model_spec(registry, args.model, args.spec or from_config.get("spec"),
                              _params(args.param) or from_config.get("params"), default_spec=settings.model)
            build = train_build(settings, registry, store, model=args.model, spec=spec.spec, params=spec.params,
                                sampling=_sampling(args) or from_config.get("sampling"),
                                class_weight=(_pairs(args.class_weight, "--class-weight")
                                              or from_config.get("class_weight")),
                                seed=args.seed if args.seed is not None else from_config.get("seed", 0),
                                config=config_name, say=say)
            print(json.dumps(build.to_dict(), indent=2) if args.json else f"built {build.ref} ({build.crn})")
        else:
            changes = {}
            if args.sampling is not None:
                changes["sampling"] = _sampling(args)
            if args.class_weight is not None:
                changes["class_weight"] = _pairs(args.class_weight, "--class-weight")
            if args.seed is not None:
                changes["seed"] = args.seed
            original, new, identical = rebuild(settings, registry, store, args.build, changes, say=say)
            if args.json:
                print(json.dumps({"original": original.ref, "rebuild": new.ref, "changes": changes,
                                  "identical_predictions": identical, "probe_sha256": new.probe_sha256}, indent=2))
            elif changes:
                print(f"rebuilt {original.ref} as {new.ref} with {changes}: same data, same order; test accuracy "
                      f"{original.metrics.get('test', {}).get('accuracy')} -> {new.metrics.get('test', {}).get('accuracy')}")
            else:
                print(f"rebuilt {original.ref} as {new.ref}: predictions on the probe set "
                      f"{'identical to the bit' if identical else 'DIFFER'} (sha256 {new.probe_sha256[:16]})")
            if not changes and not identical:
                return 1
    elif args.action == "retire":
        b = registry.retire(args.build)
        print(f"retired {b.ref}")
    elif args.action in ("deploy", "rollback"):
        app_id = args.app or settings.app_id
        if args.action == "deploy":
            model, version = parse_ref(args.build)
            # Refused here already when the registry says so (the app checks again, and the snapshot and features).
            check_deployable(registry.build(args.build).to_dict() | {"ref": f"{model}/{version}"}, None)
            role = SHADOW if args.shadow else CHAMPION
            command = deploy_command(app_id, model, version, role, args.auto_rollback)
        else:
            current = registry.serving(app_id, CHAMPION)
            if args.to:
                model, version = parse_ref(args.to)
            elif current is None or current.previous_version() is None:
                raise UserError(f"app {app_id} has no earlier build to roll back to; name one with --to MODEL/VERSION")
            else:
                model, version = current.model, current.previous_version()
            command = deploy_command(app_id, model, version, CHAMPION, reason=ROLLBACK)
        started = time.perf_counter()
        answer = ControlChannel(settings).request(command, args.timeout)
        took = time.perf_counter() - started
        if answer["result"] != "applied":
            raise UserError(f"{app_id} refused {model}/{version}: {answer['detail']}")
        print(f"{app_id}: {model}/{version} serves as {command['role']} (was {answer.get('previous')}); "
              f"applied {took:.2f}s after the command")
    elif args.action == "bench":
        result = bench(settings, records=args.records, say=say)
        print(json.dumps(result, indent=2) if args.json else format_bench(result))
    return 0


def add_commands(sub) -> None:
    add_arguments(add_command(sub, "models", cmd_models, "model registry: builds (trained snapshots), hot deploy, "
                              "rollback (redeploy) and rebuild"))
