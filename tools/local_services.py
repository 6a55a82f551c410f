"""Start, stop and inspect the local Kafka broker and Schema Registry, without Docker.

Kafka is Apache's own jars from Maven Central, run as one KRaft node that is both
broker and controller; the Schema Registry is Apicurio Registry, whose Confluent-
compatible API the apps reach at ``settings.schema_registry_url``. Versions are
pinned in ``infra/kafka/pom.xml`` and ``infra/registry/pom.xml``; Maven fetches the
jars into ``infra/lib/`` on first use. Both run as background processes in their own
session, so they outlive the ``mlstream up`` that started them. State lives under
``settings.state_dir``: ``kafka-data/``, ``registry-data/``, ``logs/`` and ``run/``
(pid files, lock, rendered config).
"""

from __future__ import annotations

import base64
import contextlib
import errno
import fcntl
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from mlstream.errors import UserError
from mlstream.settings import REPO_ROOT, Settings

INFRA_DIR = REPO_ROOT / "infra"
LIB_DIR = INFRA_DIR / "lib"
KAFKA_POM = INFRA_DIR / "kafka" / "pom.xml"
REGISTRY_POM = INFRA_DIR / "registry" / "pom.xml"
KAFKA_SERVER_PROPERTIES = INFRA_DIR / "kafka" / "server.properties"
KAFKA_LOG4J2 = INFRA_DIR / "kafka" / "log4j2.properties"
REGISTRY_PROPERTIES = INFRA_DIR / "registry" / "application.properties"

KAFKA = "kafka"
REGISTRY = "schema-registry"
KAFKA_NODE_ID = 1
# Apicurio Registry 3.3 is compiled for Java 21 (class file version 65).
MIN_JAVA = {KAFKA: 17, REGISTRY: 21}
START_TIMEOUT_S = {KAFKA: 60.0, REGISTRY: 90.0}
REGISTRY_API_PATH = "/apis/ccompat/v7"

STOP_TIMEOUT_S = 30.0
MAVEN_TIMEOUT_S = 900.0

# A marker on every service command line: tells our processes from others that
# reuse a pid or a port, and ties each to one state dir.
SERVICE_PROPERTY = "-Dmlstream.service"
STATE_DIR_PROPERTY = "-Dmlstream.state_dir"
# The ports a service was started on, to notice settings changed since.
PORTS_PROPERTY = "-Dmlstream.ports"

Progress = Callable[[str], None]


class LocalServicesError(UserError):
    """A local service cannot be fetched, started or stopped; the message says what to do."""


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    url: str
    pid: int | None
    running: bool
    healthy: bool
    log_path: Path


@dataclass(frozen=True)
class StatePaths:
    """Where one state dir keeps the services' data, logs, pid files and rendered config."""

    root: Path

    @property
    def kafka_data(self) -> Path:
        return self.root / "kafka-data"

    @property
    def registry_data(self) -> Path:
        return self.root / "registry-data"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def run(self) -> Path:
        return self.root / "run"

    @property
    def lock(self) -> Path:
        return self.run / "services.lock"

    @property
    def kafka_properties(self) -> Path:
        return self.run / "kafka-server.properties"

    def log(self, service: str) -> Path:
        return self.logs / f"{service}.log"

    def stdout_log(self, service: str) -> Path:
        """Where the JVM's own output goes: the registry logs there; Kafka only on a crash."""
        return self.log(service) if service == REGISTRY else self.logs / f"{service}-stdout.log"

    def pid_file(self, service: str) -> Path:
        return self.run / f"{service}.pid"


def state_paths(settings: Settings) -> StatePaths:
    # Absolute, because the paths end up in the services' command lines and config.
    return StatePaths(settings.state_dir.resolve())


# ---------------------------------------------------------------------------
# Public API


def status(settings: Settings) -> list[ServiceStatus]:
    """Whether each service runs (our process, from our state dir) and answers."""
    paths = state_paths(settings)
    urls = {KAFKA: kafka_bootstrap(settings), REGISTRY: registry_url(settings)}
    statuses = []
    for name in (KAFKA, REGISTRY):
        pid = _our_pid(paths, name)
        statuses.append(
            ServiceStatus(
                name=name,
                url=urls[name],
                pid=pid,
                running=pid is not None,
                healthy=pid is not None and HEALTH_CHECKS[name](settings, timeout_s=3.0),
                log_path=paths.log(name),
            )
        )
    return statuses


def up(settings: Settings, *, progress: Progress = print) -> list[ServiceStatus]:
    """Start whatever is not running yet and wait until both services answer.

    Fetches the jars on first use. A second call while both are healthy does nothing.
    Raises LocalServicesError with what to do when something is missing or fails.
    """
    paths = state_paths(settings)
    for warning in settings_mismatches(settings):
        progress(f"warning: {warning}")
    with _services_lock(paths):
        before = {s.name: s for s in status(settings)}
        if all(s.healthy for s in before.values()):
            progress(_already_running_message(before.values()))
            return list(before.values())

        kafka_version = pinned_version(KAFKA_POM, "kafka.version")
        registry_version = pinned_version(REGISTRY_POM, "apicurio.version")
        titles = {KAFKA: f"Kafka {kafka_version}", REGISTRY: f"Apicurio Registry {registry_version}"}
        to_start = [name for name, service in before.items() if not service.running]
        for name, service in before.items():
            if service.running:
                _check_started_on_current_ports(settings, name, service.pid)
        # Everything that can fail does so before any process starts.
        kafka_lib = ensure_kafka_jars(kafka_version, progress)
        registry_home = ensure_registry_app(registry_version, progress)
        javas = {name: find_java(MIN_JAVA[name], what=titles[name]) for name in to_start}
        for name in to_start:
            _check_ports_free(settings, name)

        # One of ours that runs but does not answer yet may still be starting.
        waits = [
            _PendingStart(name, service.pid, time.monotonic(), START_TIMEOUT_S[name])
            for name, service in before.items()
            if service.running
        ]
        paths.logs.mkdir(parents=True, exist_ok=True)
        if KAFKA in to_start:
            _format_kafka_storage_once(settings, paths, javas[KAFKA], kafka_lib, progress)
            progress(f"Starting {titles[KAFKA]} on {kafka_bootstrap(settings)} (log: {paths.log(KAFKA)})")
            pid = _spawn(KAFKA, kafka_command(settings, javas[KAFKA], kafka_lib), paths)
            waits.append(_PendingStart(KAFKA, pid, time.monotonic(), START_TIMEOUT_S[KAFKA]))
        if REGISTRY in to_start:
            progress(f"Starting {titles[REGISTRY]} on {registry_url(settings)} (log: {paths.log(REGISTRY)})")
            command = registry_command(settings, javas[REGISTRY], registry_home)
            pid = _spawn(REGISTRY, command, paths, cwd=registry_home)
            waits.append(_PendingStart(REGISTRY, pid, time.monotonic(), START_TIMEOUT_S[REGISTRY]))

        _wait_until_healthy(settings, paths, waits, progress)
        return status(settings)


def down(settings: Settings, *, progress: Progress = print) -> None:
    """Stop both services: SIGTERM, then SIGKILL after a timeout. Nothing running is a no-op."""
    paths = state_paths(settings)
    if not paths.run.exists():
        progress("Kafka and Schema Registry are not running.")
        return
    with _services_lock(paths):
        running = {name: pid for name in (REGISTRY, KAFKA) if (pid := _our_pid(paths, name)) is not None}
        for name in (REGISTRY, KAFKA):
            if name not in running:
                paths.pid_file(name).unlink(missing_ok=True)
        if not running:
            progress("Kafka and Schema Registry are not running.")
            return
        # Signalled together: neither needs the other to shut down cleanly.
        for name, pid in running.items():
            progress(f"Stopping {name} (pid {pid})")
            _signal_group(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for name, pid in running.items():
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if _alive(pid):
                progress(f"{name} (pid {pid}) did not stop within {STOP_TIMEOUT_S:.0f}s; killing it")
                _signal_group(pid, signal.SIGKILL)
                _wait_gone(pid, timeout_s=10.0)
            paths.pid_file(name).unlink(missing_ok=True)
        progress("Stopped.")


# ---------------------------------------------------------------------------
# Addresses and settings


def kafka_bootstrap(settings: Settings) -> str:
    return f"localhost:{settings.kafka_port}"


def registry_url(settings: Settings) -> str:
    return f"http://localhost:{settings.registry_port}{REGISTRY_API_PATH}"


#: Which variable sets each port, for error messages.
PORT_VARIABLES = {
    "kafka_port": "MLSTREAM_KAFKA_PORT",
    "kafka_controller_port": "MLSTREAM_KAFKA_CONTROLLER_PORT",
    "registry_port": "MLSTREAM_REGISTRY_PORT",
}


#: Which variable tells the apps the address on that port.
CLIENT_ADDRESS_VARIABLES = {
    "kafka_port": "MLSTREAM_BOOTSTRAP_SERVERS",
    "registry_port": "MLSTREAM_SCHEMA_REGISTRY_URL",
}


def service_ports(settings: Settings, service: str) -> dict[str, int]:
    """The ports a service listens on, by settings field name."""
    if service == KAFKA:
        return {"kafka_port": settings.kafka_port, "kafka_controller_port": settings.kafka_controller_port}
    return {"registry_port": settings.registry_port}


def settings_mismatches(settings: Settings) -> list[str]:
    """Client addresses that do not point at the local services up() starts.

    The ports and the client addresses are separate variables; changing one but not the
    other leaves the apps talking to nothing (or to someone else's broker).
    """
    problems = []
    if settings.bootstrap_servers != kafka_bootstrap(settings) and _is_local_address(settings.bootstrap_servers):
        problems.append(
            f"MLSTREAM_BOOTSTRAP_SERVERS={settings.bootstrap_servers} but the local Kafka listens on"
            f" {kafka_bootstrap(settings)} (MLSTREAM_KAFKA_PORT={settings.kafka_port})"
        )
    if settings.schema_registry_url.rstrip("/") != registry_url(settings) and _is_local_address(
        settings.schema_registry_url
    ):
        problems.append(
            f"MLSTREAM_SCHEMA_REGISTRY_URL={settings.schema_registry_url} but the local registry serves"
            f" {registry_url(settings)} (MLSTREAM_REGISTRY_PORT={settings.registry_port})"
        )
    return problems


def _is_local_address(address: str) -> bool:
    return any(host in address for host in ("localhost", "127.0.0.1", "[::1]"))


# ---------------------------------------------------------------------------
# Jars (Maven)


def pinned_version(pom: Path, property_name: str) -> str:
    """A version property of one of the infra poms: each pom is where its version is pinned."""
    namespace = {"m": "http://maven.apache.org/POM/4.0.0"}
    element = ET.parse(pom).getroot().find(f"m:properties/m:{property_name}", namespace)
    if element is None or not (element.text or "").strip():
        raise LocalServicesError(f"{pom} has no <{property_name}> property")
    return element.text.strip()


def kafka_lib_dir(version: str) -> Path:
    return LIB_DIR / f"kafka-{version}"


def registry_home_dir(version: str) -> Path:
    return LIB_DIR / f"apicurio-registry-{version}"


# Written after Maven finished, so a download cut short is fetched again.
COMPLETE_MARKER = ".complete"


def ensure_kafka_jars(version: str, progress: Progress) -> Path:
    """The folder of Kafka's jars, copied there by Maven on first use."""
    target = kafka_lib_dir(version)
    _fetch_once(f"Kafka {version} jars", target, KAFKA_POM, "dependency:copy-dependencies", progress)
    return target


def ensure_registry_app(version: str, progress: Progress) -> Path:
    """The unpacked Apicurio Registry app (quarkus-run.jar and its lib/), unpacked by Maven on first use."""
    target = registry_home_dir(version)
    _fetch_once(f"Apicurio Registry {version}", target, REGISTRY_POM, "dependency:unpack", progress)
    return target


def _fetch_once(what: str, target: Path, pom: Path, goal: str, progress: Progress) -> None:
    if (target / COMPLETE_MARKER).exists():
        return
    progress(f"Fetching {what} from Maven Central into {target} (first run only)")
    shutil.rmtree(target, ignore_errors=True)
    _run_maven(pom, goal)
    (target / COMPLETE_MARKER).touch()


def _run_maven(pom: Path, goal: str) -> None:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise LocalServicesError(
            "Maven (mvn) is needed once to fetch the Kafka and Apicurio Registry jars but is not on PATH;"
            " install it (e.g. apt-get install maven) and run again."
        )
    command = [mvn, "-B", "-q", "-f", str(pom), goal]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=MAVEN_TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        raise LocalServicesError(f"{' '.join(command)} took over {MAVEN_TIMEOUT_S:.0f}s; is Maven Central reachable?") from exc
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip().splitlines()
        raise LocalServicesError(
            f"{' '.join(command)} failed (exit {result.returncode}):\n" + "\n".join(output[-30:])
        )


# ---------------------------------------------------------------------------
# Java


def parse_java_major(version_output: str) -> int | None:
    """The major version in `java -version` output: 'openjdk version "17.0.15"' -> 17, '"1.8.0_392"' -> 8."""
    match = re.search(r'version "(\d+)(?:\.(\d+))?', version_output)
    if match is None:
        return None
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


def java_candidates() -> list[Path]:
    """Java launchers to consider, in order: $JAVA_HOME, PATH, then every JDK under /usr/lib/jvm."""
    found: list[Path] = []
    if java_home := os.environ.get("JAVA_HOME"):
        found.append(Path(java_home) / "bin" / "java")
    if on_path := shutil.which("java"):
        found.append(Path(on_path))
    found.extend(sorted(Path("/usr/lib/jvm").glob("*/bin/java")))
    unique: dict[Path, Path] = {}
    for candidate in found:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            unique.setdefault(candidate.resolve(), candidate)
    return list(unique.values())


def find_java(min_major: int, *, what: str) -> Path:
    """The first Java launcher (see java_candidates) of at least `min_major`."""
    seen = []
    for candidate in java_candidates():
        major = _java_major(candidate)
        if major is not None and major >= min_major:
            return candidate
        seen.append(f"Java {major} at {candidate}")
    found = "; found " + ", ".join(seen) if seen else "; no Java found"
    advice = (
        "install a JDK 17 (e.g. apt-get install openjdk-17-jdk-headless)"
        if min_major <= 17
        else f"install a JDK {min_major} or newer (e.g. Eclipse Temurin) under /usr/lib/jvm or set JAVA_HOME to it"
    )
    raise LocalServicesError(f"{what} needs Java {min_major} or newer{found}: {advice}.")


def _java_major(java: Path) -> int | None:
    try:
        result = subprocess.run([str(java), "-version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return parse_java_major(result.stderr + result.stdout)


# ---------------------------------------------------------------------------
# Kafka


def render_kafka_properties(settings: Settings, base: str) -> str:
    """server.properties for this run: the static base file plus listeners, ports and data dir.

    Binds to 127.0.0.1 only and advertises `localhost`, the name clients use.
    """
    paths = state_paths(settings)
    per_run = {
        "node.id": str(KAFKA_NODE_ID),
        "listeners": f"PLAINTEXT://127.0.0.1:{settings.kafka_port},CONTROLLER://127.0.0.1:{settings.kafka_controller_port}",
        "advertised.listeners": f"PLAINTEXT://localhost:{settings.kafka_port},CONTROLLER://localhost:{settings.kafka_controller_port}",
        "controller.quorum.bootstrap.servers": f"localhost:{settings.kafka_controller_port}",
        "log.dirs": str(paths.kafka_data),
    }
    lines = [base.rstrip("\n"), "", "# Per-run values from mlstream settings (tools/local_services.py)."]
    lines += [f"{key}={value}" for key, value in per_run.items()]
    return "\n".join(lines) + "\n"


def new_cluster_id() -> str:
    """A random KRaft cluster id in Kafka's Uuid text form (22 url-safe base64 characters).

    Kafka's own generator skips ids starting with '-', which read as command-line flags.
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def kafka_jvm_options(settings: Settings, paths: StatePaths) -> list[str]:
    return [
        "-Xms256m",
        "-Xmx512m",
        # Kafka's own start script's collector settings.
        "-XX:+UseG1GC",
        "-XX:MaxGCPauseMillis=20",
        "-XX:InitiatingHeapOccupancyPercent=35",
        "-XX:+ExplicitGCInvokesConcurrent",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={KAFKA_LOG4J2}",
        # Log4j2's own shutdown hook would close the log file while Kafka's hook is
        # still shutting down, hiding whether the shutdown finished cleanly.
        "-Dlog4j2.shutdownHookEnabled=false",
        f"-Dmlstream.kafka.log={paths.log(KAFKA)}",
        f"{SERVICE_PROPERTY}={KAFKA}",
        f"{STATE_DIR_PROPERTY}={paths.root}",
        ports_marker(settings, KAFKA),
    ]


def kafka_command(settings: Settings, java: Path, lib: Path) -> list[str]:
    paths = state_paths(settings)
    return [
        str(java),
        *kafka_jvm_options(settings, paths),
        "-cp",
        str(lib / "*"),
        "kafka.Kafka",
        str(paths.kafka_properties),
    ]


def _format_kafka_storage_once(settings: Settings, paths: StatePaths, java: Path, lib: Path, progress: Progress) -> None:
    """Write the config, and format the data dir as a one-voter KRaft quorum if it never was."""
    paths.run.mkdir(parents=True, exist_ok=True)
    paths.kafka_properties.write_text(render_kafka_properties(settings, KAFKA_SERVER_PROPERTIES.read_text()))
    if (paths.kafka_data / "meta.properties").exists():
        return
    progress(f"Formatting Kafka storage in {paths.kafka_data}")
    command = [
        str(java),
        f"-Dlog4j2.configurationFile={KAFKA_LOG4J2}",
        f"-Dmlstream.kafka.log={paths.log(KAFKA)}",
        "-cp",
        str(lib / "*"),
        "kafka.tools.StorageTool",
        "format",
        # This node is the whole controller quorum (KIP-853 dynamic quorum).
        "--standalone",
        "--cluster-id",
        new_cluster_id(),
        "--config",
        str(paths.kafka_properties),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise LocalServicesError(
            f"Formatting Kafka storage in {paths.kafka_data} failed (exit {result.returncode}):\n"
            + (result.stdout + result.stderr).strip()
        )


def _kafka_answers(settings: Settings, *, timeout_s: float) -> bool:
    """The broker answers a metadata request and lists itself (registered and unfenced)."""
    if not _port_accepts("127.0.0.1", settings.kafka_port):
        return False
    from confluent_kafka.admin import AdminClient

    # log_level 0: librdkafka's connection-refused lines while Kafka starts are expected.
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap(settings), "log_level": 0})
    try:
        return bool(admin.list_topics(timeout=timeout_s).brokers)
    except Exception:  # KafkaException while the broker is still starting
        return False


# ---------------------------------------------------------------------------
# Schema Registry (Apicurio)


def registry_jvm_options(settings: Settings) -> list[str]:
    paths = state_paths(settings)
    return [
        "-Xms64m",
        "-Xmx512m",
        "-Djava.awt.headless=true",
        f"-Dquarkus.config.locations={REGISTRY_PROPERTIES.as_uri()}",
        "-Dquarkus.http.host=127.0.0.1",
        f"-Dquarkus.http.port={settings.registry_port}",
        # Schemas persist, like the Kafka topics whose messages carry their ids: an
        # in-memory registry would hand the same ids to other schemas after a restart.
        f"-Dapicurio.datasource.url=jdbc:h2:file:{paths.registry_data / 'registry'}",
        # Health and metrics have their own port (9000 by default); any free one will do.
        "-Dquarkus.management.host=127.0.0.1",
        "-Dquarkus.management.port=0",
        f"{SERVICE_PROPERTY}={REGISTRY}",
        f"{STATE_DIR_PROPERTY}={paths.root}",
        ports_marker(settings, REGISTRY),
    ]


def registry_command(settings: Settings, java: Path, home: Path) -> list[str]:
    return [str(java), *registry_jvm_options(settings), "-jar", str(home / "quarkus-run.jar")]


def _registry_answers(settings: Settings, *, timeout_s: float) -> bool:
    try:
        subjects = f"http://127.0.0.1:{settings.registry_port}{REGISTRY_API_PATH}/subjects"
        with urllib.request.urlopen(subjects, timeout=timeout_s) as response:
            return response.status == 200
    except (OSError, urllib.error.URLError):
        return False


HEALTH_CHECKS: dict[str, Callable[..., bool]] = {KAFKA: _kafka_answers, REGISTRY: _registry_answers}


# ---------------------------------------------------------------------------
# Processes, ports, lock


def ports_marker(settings: Settings, service: str) -> str:
    return f"{PORTS_PROPERTY}=" + ",".join(str(port) for port in service_ports(settings, service).values())


def _check_started_on_current_ports(settings: Settings, service: str, pid: int) -> None:
    if ports_marker(settings, service) not in _command_line(pid):
        variables = ", ".join(PORT_VARIABLES[field] for field in service_ports(settings, service))
        raise LocalServicesError(
            f"{service} (pid {pid}) is running on other ports than {variables} now say;"
            " stop it with `mlstream down` (same MLSTREAM_STATE_DIR) and start again."
        )


def _check_ports_free(settings: Settings, service: str) -> None:
    for field_name, port in service_ports(settings, service).items():
        if port_in_use(port):
            raise LocalServicesError(port_taken_message(service, field_name, port))


def port_taken_message(service: str, field_name: str, port: int) -> str:
    variable = PORT_VARIABLES[field_name]
    client_variable = CLIENT_ADDRESS_VARIABLES.get(field_name)
    also = f" and {client_variable} to match" if client_variable else ""
    return (
        f"Port {port} ({variable}) is taken by another process, so {service} cannot start."
        f" Stop that process (see `ss -ltnp | grep :{port}`) or set {variable} to a free port{also}."
    )


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something listens on host:port (a bind fails), e.g. a broker that is not ours.

    SO_REUSEADDR keeps connections of a process that just stopped (TIME_WAIT) from counting.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return True
            raise
    return False


def _port_accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


# Processes this interpreter started, so that it can reap them (no zombies when one
# process, e.g. a pytest session, runs both up() and down()).
_children: dict[int, subprocess.Popen] = {}


def _spawn(service: str, command: list[str], paths: StatePaths, cwd: Path | None = None) -> int:
    paths.run.mkdir(parents=True, exist_ok=True)
    stdout_log = paths.stdout_log(service)
    with open(stdout_log, "ab") as out:
        out.write(f"\n==== {time.strftime('%Y-%m-%d %H:%M:%S')} mlstream starts {service}\n".encode())
        out.flush()
        process = subprocess.Popen(
            command,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            # Own session: survives the CLI that started it, and Ctrl-C in that terminal.
            start_new_session=True,
        )
    _children[process.pid] = process
    paths.pid_file(service).write_text(f"{process.pid}\n")
    return process.pid


def _our_pid(paths: StatePaths, service: str) -> int | None:
    """The pid in the service's pid file if that process is alive and is our service."""
    try:
        pid = int(paths.pid_file(service).read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    if not _alive(pid):
        return None
    command_line = _command_line(pid)
    ours = f"{SERVICE_PROPERTY}={service}" in command_line and (
        f"{STATE_DIR_PROPERTY}={paths.root}" in command_line
    )
    return pid if ours else None


def _command_line(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        # No /proc (macOS): ask ps, unlimited width.
        result = subprocess.run(["ps", "-ww", "-o", "args=", "-p", str(pid)], capture_output=True, text=True)
        return result.stdout.split()


def _alive(pid: int) -> bool:
    child = _children.get(pid)
    if child is not None:
        return child.poll() is None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, parent not reaping) still takes signals but is gone.
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    return True


def _signal_group(pid: int, sig: signal.Signals) -> None:
    # Each service leads its own session and process group (start_new_session).
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)


def _wait_gone(pid: int, *, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)


@contextlib.contextmanager
def _services_lock(paths: StatePaths) -> Iterator[None]:
    """One up() or down() at a time per state dir (e.g. parallel test sessions)."""
    paths.run.mkdir(parents=True, exist_ok=True)
    with open(paths.lock, "w") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


@dataclass(frozen=True)
class _PendingStart:
    service: str
    pid: int
    started: float
    timeout_s: float


def _wait_until_healthy(settings: Settings, paths: StatePaths, pending: list[_PendingStart], progress: Progress) -> None:
    waiting = list(pending)
    while waiting:
        for start in list(waiting):
            elapsed = time.monotonic() - start.started
            if HEALTH_CHECKS[start.service](settings, timeout_s=1.0):
                progress(f"{start.service} is up ({elapsed:.1f}s)")
                waiting.remove(start)
            elif not _alive(start.pid):
                paths.pid_file(start.service).unlink(missing_ok=True)
                raise LocalServicesError(
                    f"{start.service} exited while starting. Last lines of its log:\n"
                    + _log_tail(paths, start.service)
                )
            elif elapsed > start.timeout_s:
                raise LocalServicesError(
                    f"{start.service} (pid {start.pid}) did not answer within {start.timeout_s:.0f}s;"
                    f" see {paths.log(start.service)}. `mlstream down` stops it."
                    f" Last lines of its log:\n" + _log_tail(paths, start.service)
                )
        if waiting:
            time.sleep(0.2)


def _log_tail(paths: StatePaths, service: str, lines: int = 20) -> str:
    logs = dict.fromkeys([paths.stdout_log(service), paths.log(service)])
    tails = []
    for log in logs:
        with contextlib.suppress(OSError):
            text = log.read_text(errors="replace").splitlines()[-lines:]
            tails.append(f"--- {log}\n" + "\n".join(text))
    return "\n".join(tails) or "(no log written)"


def _already_running_message(statuses) -> str:
    described = ", ".join(f"{s.name} at {s.url} (pid {s.pid})" for s in statuses)
    return f"Already running: {described}."
