"""``mlstream up | down | status``: the local Kafka broker and Schema Registry (and, ``--with catalog``, the catalog)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from apps.lineage_service.service import stop_background
from mlstream.errors import UserError
from mlstream.kafka import problems
from mlstream.profiles import LOCAL, SECURE_LOCAL
from mlstream.settings import REPO_ROOT, Settings
from tools import local_services
from tools.commands.arguments import add_command


CATALOG_SCRIPT = REPO_ROOT / "infra" / "catalog" / "catalog.sh"
EXTRAS = ("catalog",)


def catalog(settings: Settings, action: str) -> list[str]:
    """Run ``infra/catalog/catalog.sh <action>`` with these settings; the lines it prints (its progress goes to
    stderr as it comes: the first start fetches ~660 MB)."""
    if not CATALOG_SCRIPT.exists():
        raise UserError(f"the catalog runs from a checkout of mlstream ({CATALOG_SCRIPT} is missing): clone the "
                        f"repository and run 'mlstream up --with catalog' there")
    env = {**os.environ, **settings.to_env(), "MLSTREAM_PYTHON": sys.executable}
    done = subprocess.run(["bash", str(CATALOG_SCRIPT), action], env=env, stdout=subprocess.PIPE, text=True)
    if done.returncode != 0:
        raise UserError(f"the catalog did not {action} (exit {done.returncode}); its output is above")
    return done.stdout.splitlines()


def cmd_up(args, settings: Settings) -> int:
    for service in local_services.up(settings):
        print(f"{service.name}: {service.url} (pid {service.pid}, log {service.log_path})")
    if "catalog" in args.with_:
        lines = catalog(settings, "start")
        print(f"catalog: SQL endpoint {lines[-1]} (HiveServer2, NOSASL); to put Spark jobs on the same metastore "
              f"and warehouse:")
        print("  export " + " ".join(lines[:-1]))
        print("  and S3Proxy's AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (infra/README.md)")
    return 0


def cmd_down(args, settings: Settings) -> int:
    if stop_background(settings):  # the demo leaves it running; it reads from the Kafka we stop
        print("Stopped the lineage service.")
    if "catalog" in args.with_:
        catalog(settings, "stop")
        print("Stopped the catalog (Thrift server, S3Proxy, PostgreSQL).")
    local_services.down(settings)
    return 0


def probe_endpoints(settings: Settings) -> list[dict]:
    """Ask the profile's Kafka and registry themselves, whoever started them: answering, or why not."""
    probes = []
    for name, url, check, unit in (("kafka", settings.bootstrap_servers, problems.check_kafka, "brokers"),
                                   ("schema-registry", settings.schema_registry_url, problems.check_registry,
                                    "subjects")):
        try:
            probes.append({"name": name, "url": url, "answering": True, "detail": f"{check(settings)} {unit}"})
        except problems.ConnectionProblem as err:
            probes.append({"name": name, "url": url, "answering": False, "detail": str(err)})
    return probes


def cmd_status(args, settings: Settings) -> int:
    probes = probe_endpoints(settings)
    # The local services' processes: only where this profile's broker is one `mlstream up` starts.
    services = local_services.status(settings) if settings.profile in (LOCAL, SECURE_LOCAL) else []
    if args.json:
        print(json.dumps({"profile": settings.profile, "endpoints": probes,
                          "local_services": [vars(s) | {"log_path": str(s.log_path)} for s in services]}, indent=2))
    else:
        print(f"profile {settings.profile}" + (f" (from {settings.config_file})" if settings.config_file else ""))
        for p in probes:
            print(f"{p['name']:16} {'answering' if p['answering'] else 'NOT ANSWERING':24} {p['url']}  {p['detail']}")
        for s in services:
            state = "healthy" if s.healthy else ("running, not answering" if s.running else "stopped")
            print(f"{'local ' + s.name:22} {state:24} pid={s.pid or '-'}  log={s.log_path}")
    return 0 if all(p["answering"] for p in probes) and all(s.healthy for s in services) else 1


def add_commands(sub) -> None:
    up = add_command(sub, "up", cmd_up, "start the local Kafka broker and Schema Registry (no Docker); a no-op when "
                     "they run")
    down = add_command(sub, "down", cmd_down, "stop the local services started by 'up', and the lineage service the "
                       "demo started")
    for parser, verb in ((up, "start"), (down, "stop")):
        parser.add_argument("--with", dest="with_", action="append", default=[], choices=EXTRAS,
                            help=f"also {verb} the catalog: a Hive metastore in PostgreSQL, a warehouse bucket on "
                                 f"S3Proxy and Spark's Thrift server as SQL endpoint (docs/catalog.md)")
    add_command(sub, "status", cmd_status, "show whether the local services run and answer").add_argument(
        "--json", action="store_true", help="print JSON")
