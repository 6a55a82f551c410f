"""``mlstream lineage serve | stop | deployment | show | who | build | readers | changes | reproduce``: Atlas
lineage."""

from __future__ import annotations

import json
import sys
import time

from apps.lineage_service.service import LineageService, stop_background
from mlstream.errors import UserError
from mlstream.kafka import clients
from mlstream.security import audit
from mlstream.security.audit_topic import audit_topic, read_audit
from mlstream.lineage import lifecycle
from mlstream.lineage.spool import lineage_emitter
from mlstream.registry.manifest import BuildManifest
from mlstream.registry.metadata_log import open_registry
from mlstream.registry import training
from mlstream.settings import Settings
from tools import lineage_retrace as retrace
from tools import lineage_views as views
from tools.commands.arguments import add_command


def cmd_lineage(args, settings: Settings) -> int:
    if args.action == "serve":
        service = LineageService(settings, host=args.host).start()
        print(f"lineage service: Atlas REST v2 at {service.url}/api/atlas, the graph at {service.url}/lineage/, "
              f"reading {settings.topics.atlas_hook}, graph in {settings.state_dir / 'lineage' / 'lineage.db'}",
              flush=True)
        try:
            while True:
                time.sleep(30)
                print(f"lineage service: {service.consumer.applied} notifications applied, "
                      f"{service.consumer.rejected} rejected", file=sys.stderr, flush=True)
        finally:
            service.stop()
    if args.action == "stop":
        print("lineage service stopped" if stop_background(settings) else "no lineage service started by the demo")
        return 0
    if args.action == "deployment":
        when, user, deployment = time.time_ns() // 1_000_000, "mlstream", args.deployment or settings.app_id
        if args.step == "retire":
            notes = [lifecycle.retire(args.model, deployment, retired_at_ms=when, user=user)]
        elif args.build is None:
            raise UserError(f"'lineage deployment {args.step}' needs --build VERSION")
        elif args.step == "deploy":
            notes = lifecycle.deploy(args.model, args.build, deployment, deployed_at_ms=when, user=user)
        else:
            notes = getattr(lifecycle, args.step)(args.model, args.build, deployment, deployed_at_ms=when, user=user)
        emitter = lineage_emitter(settings, key=f"deployment-{deployment}")
        for note in notes:
            emitter.emit(note)
        emitter.flush()
        print(f"{args.model} on {deployment}: {args.step} reported ({len(notes)} notification(s))")
        return 0
    client = views.atlas_client(settings)
    if args.action == "show":
        result = views.graph(client, args.entity, settings.atlas_namespace, depth=args.depth)
        print(json.dumps(result, indent=2) if args.json else views.format_graph(result))
    elif args.action in ("build", "readers", "changes"):
        options = {"last": args.last} if args.action == "changes" else {}
        result = getattr(retrace, args.action)(client, args.entity, settings.atlas_namespace, **options)
        print(json.dumps(result, indent=2) if args.json else getattr(retrace, f"format_{args.action}")(result))
    elif args.action == "who":
        result = views.who(client, args.dataset, settings.atlas_namespace)
        # a Kafka topic's readers as the access audit saw them (mlstream security audit): who, not only which process
        if audit_topic(settings) in clients.admin(settings).list_topics(timeout=15).topics:
            records = read_audit(settings)
            result["access"] = audit.who(records, args.dataset)
            # the builds that trained on it (their manifests say which topic and offsets) joined with the audit
            builds = [(f"{b.model}/{b.version}", training.manifest_of(b)) for b in open_registry(settings).builds()]
            result["builds"] = audit.build_readers(builds, records, args.dataset)
        print(json.dumps(result, indent=2) if args.json else views.format_who(result))
    elif args.action == "reproduce":
        manifest = (BuildManifest.from_json(open(args.manifest, encoding="utf-8").read()) if args.manifest
                    else training.manifest_of(open_registry(settings).build(args.build)))
        report = training.reproduce(settings, manifest, args.out)
        if args.json:
            print(json.dumps(report, indent=2))
        for split, files in report.items():
            print(f"{split:10} " + "  ".join(f"{name} {r['bytes']} bytes sha256 {r['sha256'][:12]} "
                                             f"{'= build' if r['matches'] else 'DIFFERS'}" for name, r in files.items()))
        print(f"{manifest.model} v{manifest.version}: every split reproduced byte for byte in {args.out}")
    return 0


def add_commands(sub) -> None:
    lineage = add_command(sub, "lineage", cmd_lineage, "Atlas lineage: the embedded lineage service, graphs, who "
                          "used a dataset")
    lineage_sub = lineage.add_subparsers(dest="action", required=True, metavar="ACTION")
    serve = lineage_sub.add_parser(
        "serve", help="consume ATLAS_HOOK into an embedded graph and serve Atlas REST v2 and the graph page "
        "/lineage/ on MLSTREAM_LINEAGE_PORT (for when there is no Atlas)",
        description="Atlas REST v2 under /api/atlas for the official apache-atlas client: entities (create, get, "
        "bulk, headers, partial update, soft delete, audit), classifications, labels, search (basic, DSL subset, "
        "full text, attribute, quick, related), lineage, relationships, typedefs, admin metrics, glossary terms "
        "on entities. Atlas paths not served answer 501 in Atlas's error shape. The graph page: /lineage/.")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    lineage_sub.add_parser("stop", help="stop the lineage service that 'mlstream demo' left running")
    deployment = lineage_sub.add_parser("deployment", help="report a deployment's lifecycle: deploy, redeploy or "
                                        "roll back a build, retire it (history is kept)")
    deployment.add_argument("step", choices=["deploy", "redeploy", "rollback", "retire"])
    deployment.add_argument("--model", required=True)
    deployment.add_argument("--build", type=int, default=None, help="build version served (not for retire)")
    deployment.add_argument("--deployment", default=None, help="deployment name (default: MLSTREAM_APP_ID)")
    show = lineage_sub.add_parser("show", help="print the upstream and downstream graph of an entity (a guid, "
                                  "type:qualifiedName, or a qualifiedName/topic such as mlstream.predictions)")
    show.add_argument("entity")
    show.add_argument("--depth", type=int, default=5, help="processes to follow each way (default: %(default)s)")
    show.add_argument("--json", action="store_true", help="print the upstream and downstream trees as JSON")
    for action, what, text in (
            ("build", "a model build (<model>/<version>, its CRN or guid)", "how a build was made: features, "
             "schema versions, offsets per split, sampling, code commit, training datasets, deployments"),
            ("readers", "a dataset (a topic name, type:qualifiedName or guid)", "every process, model build and "
             "deployment downstream of a dataset: all that read it, directly or through a build"),
            ("changes", "an entity; <model>@<stream app> for a deployment", "what each change of an entity "
             "changed (before -> after), from its audit; for a deployment, its deploy process's too")):
        retrace_parser = lineage_sub.add_parser(action, help=text)
        retrace_parser.add_argument("entity", help=what)
        if action == "changes":
            retrace_parser.add_argument("--last", type=int, default=20,
                                        help="the last N changes (default: %(default)s)")
        retrace_parser.add_argument("--json", action="store_true", help="print JSON")
    who = lineage_sub.add_parser("who", help="list the processes that produced and consumed a dataset, and when, "
                                 "and (with an audit topic) who read it, allowed or denied")
    who.add_argument("dataset")
    who.add_argument("--json", action="store_true", help="print JSON")
    reproduce = lineage_sub.add_parser("reproduce", help="write out the exact train/validation/test records of a "
                                       "registry build (MODEL/VERSION or its CRN) and check them against its manifest")
    reproduce.add_argument("build")
    reproduce.add_argument("--out", required=True, help="folder for <split>/records.bin, labels.bin, order.txt")
    reproduce.add_argument("--manifest", default=None, help="read the build manifest from this file, not the registry")
    reproduce.add_argument("--json", action="store_true", help="also print the per-file report as JSON")
