"""``mlstream security apply [--dry-run] | process --topic T``: the Ranger-format policies enforced on the broker."""

from __future__ import annotations

import json
from pathlib import Path

from mlstream import config_store
from mlstream.errors import UserError
from mlstream.kafka import clients
from mlstream.security import audit, kafka_acls, passwords
from mlstream.security.audit_topic import audit_topic, read_audit
from mlstream.settings import Settings
from tools.commands.arguments import add_command
from tools.security_admin import admin_settings, make_plan, password_folder, scram_mechanism
from tools.security_audit import ship_authorizer_log, ship_warehouse_queries

#: The processor's /stats/ port: beside the scorer's 6066 and the linker's 6067.
PROCESSOR_WEB_PORT = 6069


def cmd_process(args, settings: Settings, store: config_store.ConfigStore) -> int:
    """Run the secure-dataset processor, a Faust worker, on one raw topic until stopped."""
    topic = clients.admin(settings).list_topics(timeout=30).topics.get(args.topic)
    if topic is None or topic.error is not None:
        raise UserError(f"raw topic {args.topic} does not exist on {settings.bootstrap_servers}: publish the dataset "
                        f"first (the processor's topics are partitioned as it is)")
    # Imported here, not at the top: Faust adds seconds of CPU to `mlstream --help`.
    from faust import Worker

    from apps.secure_datasets.app import SecureDatasetsApp

    app = SecureDatasetsApp(settings, args.topic, len(topic.partitions), store, args.web_port, args.reload_s)
    print(f"secure datasets of {args.topic}: policies from security.hive and security.directory, looked up every "
          f"{args.reload_s:g} s; figures on http://localhost:{args.web_port}/stats/; Ctrl-C stops", flush=True)
    Worker(app.app, loglevel=args.loglevel).execute_from_commandline()
    return 0


def cmd_audit(args, settings: Settings) -> int:
    if args.warehouse:
        shipped = ship_warehouse_queries(settings)
        print(json.dumps(shipped) if args.json else f"{shipped['statements']} SQL endpoint statements -> "
              f"{shipped['audit_records']} audit records on {shipped['topic']}")
        return 0
    shipped = ship_authorizer_log(settings, Path(args.log) if args.log else None)
    print(json.dumps(shipped) if args.json else f"{shipped['decisions']} authorizer decisions -> "
          f"{shipped['audit_records']} audit records ({shipped['denied']} denied) on {shipped['topic']}")
    return 0


def cmd_access(args, settings: Settings) -> int:
    """``mlstream access who DATASET``: who read the dataset (or its secure topics), when, allowed or denied."""
    rows = audit.who(read_audit(settings), args.dataset)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print(f"no audit records about {args.dataset} on {audit_topic(settings)} (run 'mlstream security audit' "
              f"to ship the broker's decisions, 'mlstream security audit --warehouse' the SQL endpoint's queries)")
    for row in rows:
        versions = f" policy versions {row['policy_versions']}" if row["policy_versions"] else ""
        print(f"{row['user']:<16} {row['result']:<8} {row['access']:<10} {row['resource']:<44} {row['events']:>6} "
              f"event(s) {row['first']} .. {row['last']} ({row['enforcer']}{versions})")
    return 0


def cmd_security(args, settings: Settings) -> int:
    if args.action == "audit":
        return cmd_audit(args, settings)
    store = config_store.open_config_store(settings, args.folder)
    if args.action == "process":
        return cmd_process(args, settings, store)
    admin = clients.admin(admin_settings(settings))
    planned, versions = make_plan(settings, store, admin)
    folder = password_folder(settings)
    if args.json:
        print(json.dumps({"versions": versions, "dry_run": args.dry_run,
                          "users_to_create": planned.users_to_create,
                          "create": [str(a) for a in planned.create], "delete": [str(a) for a in planned.delete],
                          "unchanged": len(planned.keep), "refusals": [str(r) for r in planned.refusals]}, indent=2))
    else:
        print(f"security.directory v{versions['directory']}, security.kafka "
              f"{'v' + str(versions['kafka_policies']) if versions['kafka_policies'] else '(none: no grants)'}")
        for user in planned.users_to_create:
            print(f"+ user {user} (SCRAM; password in {passwords.password_file(folder, user)})")
        for acl in planned.create:
            print(f"+ {acl}")
        for acl in planned.delete:
            print(f"- {acl}")
        print(f"{len(planned.keep)} ACL(s) already in place; {planned.changes} change(s)"
              + (" planned (dry run: nothing done)" if args.dry_run else ""))
    if args.dry_run:
        if planned.refusals:
            raise kafka_acls.PoliciesRefused(planned.refusals)
        return 0
    kafka_acls.apply(admin, planned, lambda user: passwords.stored_password(folder, user), scram_mechanism(settings))
    if not args.json:
        print("applied" if planned.changes else "nothing to change")
    return 0


def add_commands(sub) -> None:
    security = add_command(sub, "security", cmd_security, "enforce the Ranger-format Kafka policies "
                           "(config security.kafka) and the users of security.directory on the broker: SCRAM users, "
                           "Kafka ACLs (see docs/security.md)")
    security.add_argument("--folder", default=None, help="read the security configs from this folder instead of "
                          "the registry")
    security_sub = security.add_subparsers(dest="action", required=True, metavar="ACTION")
    apply = security_sub.add_parser("apply", help="add the directory's users, create the ACLs the policies grant "
                                    "and delete the ones they no longer grant (idempotent); refuse, with the reason, "
                                    "what ACLs cannot express", description="idempotent: a second run changes nothing")
    apply.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    apply.add_argument("--json", action="store_true", help="print the plan as JSON")
    process = security_sub.add_parser("process", help="write the secure datasets of a raw topic: for each team the "
                                      "security.hive policies grant select, <topic>.secure.<team>, masked and "
                                      "filtered, exactly once (a Faust worker on the data plane; runs until Ctrl-C)")
    process.add_argument("--topic", required=True, help="the raw dataset topic (DATABASE.TABLE in the hive policies)")
    process.add_argument("--reload-s", type=float, default=5.0,
                         help="seconds between looks at the stored policies (default: %(default)s)")
    process.add_argument("--web-port", type=int, default=PROCESSOR_WEB_PORT,
                         help="port of its /stats/ (on MLSTREAM_WEB_BIND, localhost by default; default: %(default)s)")
    process.add_argument("--loglevel", default="info", choices=["debug", "info", "warning", "error"])
    audited = security_sub.add_parser("audit", help="ship the broker authorizer's decisions logged since the last "
                                      "run to the audit topic as Ranger-format audit records, summarised")
    audited.add_argument("--log", default=None, metavar="FILE", help="the authorizer log (default: secure-local's "
                         "logs/kafka-authorizer.log)")
    audited.add_argument("--warehouse", action="store_true", help="ship the SQL endpoint's queries instead (what "
                         "each user selected, from the Thrift server's event log; docs/catalog.md)")
    audited.add_argument("--json", action="store_true", help="print the counts as JSON")
    access = add_command(sub, "access", cmd_access, "the access audit: who read a dataset, when, allowed or denied "
                         "(from the audit topic)")
    access_sub = access.add_subparsers(dest="action", required=True, metavar="ACTION")
    who = access_sub.add_parser("who", help="who accessed DATASET (a raw topic) or its secure topics")
    who.add_argument("dataset")
    who.add_argument("--json", action="store_true", help="print JSON")
