"""Apache Kafka as one local KRaft node, broker and controller: its jars, config, command line and health."""

from __future__ import annotations

import base64
import subprocess
import uuid
from pathlib import Path


from mlstream.kafka import clients
from mlstream.settings import Settings
from tools.local_services import maven, secured
from tools.local_services.ports import port_accepts
from tools.local_services.processes import service_markers
from tools.local_services.state import KAFKA, LocalServicesError, Progress, StatePaths, state_paths

KAFKA_POM = maven.CONF_DIR / "kafka" / "pom.xml"
KAFKA_SERVER_PROPERTIES = maven.CONF_DIR / "kafka" / "server.properties"
KAFKA_LOG4J2 = maven.CONF_DIR / "kafka" / "log4j2.properties"

MIN_JAVA = 17
START_TIMEOUT_S = 60.0
KAFKA_NODE_ID = 1


def kafka_version() -> str:
    return maven.pinned_version(KAFKA_POM, "kafka.version")


def kafka_lib_dir(cache: Path, version: str) -> Path:
    return maven.lib_dir(cache, "kafka", version)


def ensure_kafka_jars(cache: Path, version: str, progress: Progress) -> Path:
    """The folder of Kafka's jars, copied there by Maven on first use."""
    target = kafka_lib_dir(cache, version)
    maven.fetch_once(f"Kafka {version} jars", target, KAFKA_POM, "dependency:copy-dependencies", cache, progress)
    return target


def render_kafka_properties(settings: Settings, base: str) -> str:
    """server.properties for this run: the static base file plus listeners, ports and data dir.

    Binds to 127.0.0.1 only and advertises `localhost`, the name clients use. The secure-local
    profile's node listens SASL_SSL instead, with ACLs (``secured.py``).
    """
    paths = state_paths(settings)
    per_run: dict[str, str] = {
        "node.id": str(KAFKA_NODE_ID),
        "listeners": f"PLAINTEXT://127.0.0.1:{settings.kafka_port},CONTROLLER://127.0.0.1:{settings.kafka_controller_port}",
        "advertised.listeners": f"PLAINTEXT://localhost:{settings.kafka_port},CONTROLLER://localhost:{settings.kafka_controller_port}",
        "controller.quorum.bootstrap.servers": f"localhost:{settings.kafka_controller_port}",
        "log.dirs": str(paths.kafka_data),
    }
    if secured.is_secured(settings):
        per_run |= secured.secured_properties(settings, paths)
    lines = [base.rstrip("\n"), "", "# Per-run values from mlstream settings (tools/local_services/kafka.py)."]
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
        f"-Dmlstream.kafka.authorizer.log={authorizer_log(paths)}",
        *service_markers(settings, paths, KAFKA),
    ]


def authorizer_log(paths: StatePaths) -> Path:
    """The broker authorizer's decisions, one line each (secure-local; the plain node has no authorizer)."""
    return paths.log("kafka-authorizer")


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


def format_kafka_storage_once(settings: Settings, paths: StatePaths, java: Path, lib: Path, progress: Progress) -> None:
    """Write the config, and format the data dir as a one-voter KRaft quorum if it never was."""
    paths.run.mkdir(parents=True, exist_ok=True)
    if secured.is_secured(settings):
        secured.ensure_certificates(paths, progress)
    paths.kafka_properties.touch(mode=0o600)  # the secured node's holds its passwords
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
        *(secured.scram_format_arguments(paths) if secured.is_secured(settings) else []),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise LocalServicesError(
            f"Formatting Kafka storage in {paths.kafka_data} failed (exit {result.returncode}):\n"
            + (result.stdout + result.stderr).strip()
        )


def kafka_answers(settings: Settings, *, timeout_s: float) -> bool:
    """The broker answers a metadata request and lists itself (registered and unfenced)."""
    if not port_accepts("127.0.0.1", settings.kafka_port):
        return False
    # log_level 0: librdkafka's connection-refused lines while Kafka starts are expected.
    admin = clients.admin(settings)
    try:
        return bool(admin.list_topics(timeout=timeout_s).brokers)
    except Exception:  # KafkaException while the broker is still starting
        return False
