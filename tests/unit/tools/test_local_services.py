"""The parts of the local service manager that need no running service."""

from __future__ import annotations

import base64
import dataclasses
import os
import re
import socket
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tools import local_services as ls
from tools.local_services import java, kafka, maven, ports, processes, registry, state
from mlstream.settings import Settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return dataclasses.replace(
        Settings.from_env(),
        bootstrap_servers="localhost:19092",
        schema_registry_url="http://localhost:18081/apis/ccompat/v7",
        kafka_port=19092,
        kafka_controller_port=19093,
        registry_port=18081,
        state_dir=tmp_path / "state",
    )


def parse_properties(text: str) -> dict[str, str]:
    """Java .properties semantics for the simple files we write: the last value of a key wins."""
    values = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("#", "!")):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


# --- Java ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("output", "major"),
    [
        ('openjdk version "17.0.15" 2025-04-15\nOpenJDK Runtime Environment (build 17.0.15+6)', 17),
        ('openjdk version "25.0.3" 2026-04-21 LTS', 25),
        ('java version "1.8.0_392"', 8),
        ('openjdk version "21" 2023-09-19', 21),
        ("no java here", None),
    ],
)
def test_parse_java_major(output: str, major: int | None) -> None:
    assert java.parse_java_major(output) == major


def test_find_java_explains_what_to_install_when_too_old(monkeypatch) -> None:
    monkeypatch.setattr(java, "java_candidates", lambda: [Path("/opt/jdk17/bin/java")])
    monkeypatch.setattr(java, "_java_major", lambda java: 17)
    with pytest.raises(ls.LocalServicesError) as error:
        java.find_java(21, what="Apicurio Registry 3.3.3")
    message = str(error.value)
    assert "needs Java 21 or newer" in message
    assert "Java 17 at /opt/jdk17/bin/java" in message
    assert "JAVA_HOME" in message


def test_find_java_without_any_java_asks_for_jdk_17(monkeypatch) -> None:
    monkeypatch.setattr(java, "java_candidates", lambda: [])
    with pytest.raises(ls.LocalServicesError, match="no Java found.*JDK 17"):
        java.find_java(17, what="Kafka 4.4.0")


def test_find_java_takes_the_first_new_enough(monkeypatch) -> None:
    majors = {Path("/a/java"): 17, Path("/b/java"): 25}
    monkeypatch.setattr(java, "java_candidates", lambda: list(majors))
    monkeypatch.setattr(java, "_java_major", majors.get)
    assert java.find_java(17, what="Kafka") == Path("/a/java")
    assert java.find_java(21, what="registry") == Path("/b/java")


# --- Pinned versions and where Maven puts the jars --------------------------


def pom_output_directories(pom: Path) -> list[str]:
    namespace = {"m": "http://maven.apache.org/POM/4.0.0"}
    return [e.text for e in ET.parse(pom).getroot().iterfind(".//m:outputDirectory", namespace)]


def test_versions_are_pinned_in_the_poms() -> None:
    assert re.fullmatch(r"4\.\d+\.\d+", maven.pinned_version(kafka.KAFKA_POM, "kafka.version"))
    assert re.fullmatch(r"3\.\d+\.\d+", maven.pinned_version(registry.REGISTRY_POM, "apicurio.version"))


def test_poms_put_the_jars_where_local_services_looks(tmp_path: Path) -> None:
    kafka_dirs = pom_output_directories(kafka.KAFKA_POM)
    registry_dirs = pom_output_directories(registry.REGISTRY_POM)
    assert kafka_dirs == ["${mlstream.cache}/lib/kafka-${kafka.version}"]
    assert registry_dirs == ["${mlstream.cache}/lib/apicurio-registry-${apicurio.version}"]
    assert kafka.kafka_lib_dir(tmp_path, "4.4.0") == tmp_path / "lib" / "kafka-4.4.0"
    assert registry.registry_home_dir(tmp_path, "3.3.3") == tmp_path / "lib" / "apicurio-registry-3.3.3"
    # The cache dir reaches the poms as the mlstream.cache property.
    assert f"-Dmlstream.cache={tmp_path}" in maven.maven_command("mvn", kafka.KAFKA_POM, "dependency:unpack", tmp_path)


def test_a_fetch_runs_once_per_cache_dir(tmp_path: Path, monkeypatch) -> None:
    target = maven.lib_dir(tmp_path, "kafka", "4.4.0")
    goals: list[str] = []
    monkeypatch.setattr(maven, "_run_maven", lambda pom, goal, cache: goals.append(goal) or target.mkdir(parents=True))
    messages: list[str] = []
    for _ in range(2):
        maven.fetch_once("Kafka 4.4.0 jars", target, kafka.KAFKA_POM, "dependency:copy-dependencies", tmp_path,
                         messages.append)
    assert goals == ["dependency:copy-dependencies"]
    assert (target / maven.COMPLETE_MARKER).exists()
    assert messages == [f"Fetching Kafka 4.4.0 jars from Maven Central into {target} (first run only)"]


def test_maven_writes_nothing_beside_the_poms() -> None:
    """An installed package's folder may be read-only: Maven's own build files go to the cache dir too."""
    namespace = {"m": "http://maven.apache.org/POM/4.0.0"}
    for pom in (kafka.KAFKA_POM, registry.REGISTRY_POM):
        build_dir = ET.parse(pom).getroot().find("m:build/m:directory", namespace)
        assert build_dir is not None and build_dir.text.startswith("${mlstream.cache}/"), pom


def test_the_cache_dir_comes_from_the_environment(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MLSTREAM_CACHE_DIR", str(tmp_path / "cache"))
    assert Settings.from_env().cache_dir == tmp_path / "cache"


def test_the_state_dir_defaults_to_the_working_directory(monkeypatch, tmp_path: Path) -> None:
    """No checkout needed: .mlstream/ where the command runs, absolute so child processes agree."""
    monkeypatch.delenv("MLSTREAM_STATE_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    assert Settings.from_env().state_dir == tmp_path / ".mlstream"
    monkeypatch.setenv("MLSTREAM_STATE_DIR", "relative/state")
    assert Settings.from_env().state_dir == tmp_path / "relative" / "state"


def test_pinned_version_names_a_missing_property(tmp_path: Path) -> None:
    pom = tmp_path / "pom.xml"
    pom.write_text('<project xmlns="http://maven.apache.org/POM/4.0.0"><properties/></project>')
    with pytest.raises(ls.LocalServicesError, match="no <kafka.version>"):
        maven.pinned_version(pom, "kafka.version")


# --- Kafka config -----------------------------------------------------------


def test_kafka_properties_take_ports_and_data_dir_from_settings(settings: Settings) -> None:
    rendered = parse_properties(kafka.render_kafka_properties(settings, kafka.KAFKA_SERVER_PROPERTIES.read_text()))
    assert rendered["process.roles"] == "broker,controller"
    assert rendered["listeners"] == "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093"
    assert rendered["advertised.listeners"] == "PLAINTEXT://localhost:19092,CONTROLLER://localhost:19093"
    assert rendered["controller.quorum.bootstrap.servers"] == "localhost:19093"
    assert rendered["log.dirs"] == str(settings.state_dir.resolve() / "kafka-data")
    assert rendered["node.id"] == "1"


def test_per_run_values_override_the_base_file(settings: Settings) -> None:
    rendered = parse_properties(kafka.render_kafka_properties(settings, "listeners=PLAINTEXT://:1\nnum.partitions=7\n"))
    assert rendered["listeners"].startswith("PLAINTEXT://127.0.0.1:19092")
    assert rendered["num.partitions"] == "7"


def test_kafka_base_config_suits_one_node() -> None:
    base = parse_properties(kafka.KAFKA_SERVER_PROPERTIES.read_text())
    for key in (
        "offsets.topic.replication.factor",
        "transaction.state.log.replication.factor",
        "transaction.state.log.min.isr",
        "share.coordinator.state.topic.replication.factor",
    ):
        assert base[key] == "1", key
    assert base["group.initial.rebalance.delay.ms"] == "0"
    assert base["auto.create.topics.enable"] == "true"
    # The per-run keys are only ever written by render_kafka_properties.
    assert not {"listeners", "log.dirs", "node.id"} & base.keys()


def test_cluster_id_is_a_kafka_uuid() -> None:
    for _ in range(200):
        cluster_id = kafka.new_cluster_id()
        assert len(cluster_id) == 22
        assert not cluster_id.startswith("-")
        assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16


def test_service_commands_carry_the_marker_that_identifies_them(settings: Settings) -> None:
    launcher = Path("/usr/bin/java")
    root = settings.state_dir.resolve()
    kafka_line = kafka.kafka_command(settings, launcher, Path("/lib/kafka"))
    assert kafka_line[0] == "/usr/bin/java"
    assert kafka_line[-3:] == ["/lib/kafka/*", "kafka.Kafka", str(root / "run" / "kafka-server.properties")]
    assert "-Dmlstream.service=kafka" in kafka_line
    assert f"-Dmlstream.state_dir={root}" in kafka_line
    assert f"-Dmlstream.kafka.log={root / 'logs' / 'kafka.log'}" in kafka_line
    assert "-Dmlstream.ports=19092,19093" in kafka_line

    registry_line = registry.registry_command(settings, launcher, Path("/lib/apicurio"))
    assert registry_line[-2:] == ["-jar", "/lib/apicurio/quarkus-run.jar"]
    assert "-Dquarkus.http.port=18081" in registry_line
    assert "-Dquarkus.http.host=127.0.0.1" in registry_line
    assert f"-Dquarkus.config.locations={registry.REGISTRY_PROPERTIES.as_uri()}" in registry_line
    assert "-Dmlstream.service=schema-registry" in registry_line
    assert "-Dmlstream.ports=18081" in registry_line
    assert f"-Dapicurio.datasource.url=jdbc:h2:file:{root / 'registry-data' / 'registry'}" in registry_line


def test_registry_config_matches_confluent_defaults() -> None:
    config = parse_properties(registry.REGISTRY_PROPERTIES.read_text())
    assert config["apicurio.rules.global.compatibility"] == "BACKWARD"
    assert config["apicurio.ccompat.legacy-id-mode.enabled"] == "false"
    assert int(config["apicurio.ccompat.max-subjects"]) >= 100_000


# --- Ports and addresses ----------------------------------------------------


def test_port_in_use_sees_a_listener() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert ports.port_in_use(port)
    assert not ports.port_in_use(port)


def test_port_taken_message_names_the_port_and_the_variables() -> None:
    message = ports.port_taken_message("kafka", "kafka_port", 9092)
    assert "Port 9092 (MLSTREAM_KAFKA_PORT)" in message
    assert "MLSTREAM_BOOTSTRAP_SERVERS" in message
    message = ports.port_taken_message("kafka", "kafka_controller_port", 9093)
    assert "MLSTREAM_KAFKA_CONTROLLER_PORT" in message
    message = ports.port_taken_message("schema-registry", "registry_port", 8081)
    assert "MLSTREAM_REGISTRY_PORT" in message and "MLSTREAM_SCHEMA_REGISTRY_URL" in message


def test_settings_mismatches(settings: Settings) -> None:
    assert ports.settings_mismatches(settings) == []
    moved = dataclasses.replace(settings, kafka_port=29092, registry_port=28081)
    problems = ports.settings_mismatches(moved)
    assert len(problems) == 2
    assert "MLSTREAM_BOOTSTRAP_SERVERS=localhost:19092" in problems[0]
    assert "MLSTREAM_SCHEMA_REGISTRY_URL" in problems[1]
    # A remote broker or registry is someone else's business.
    remote = dataclasses.replace(
        moved, bootstrap_servers="kafka.example:9092", schema_registry_url="http://sr.example/apis/ccompat/v7"
    )
    assert ports.settings_mismatches(remote) == []


# --- Pid files and state, with nothing running ------------------------------


def test_status_with_nothing_started(settings: Settings) -> None:
    statuses = ls.status(settings)
    assert [s.name for s in statuses] == ["kafka", "schema-registry"]
    assert [s.url for s in statuses] == ["localhost:19092", "http://localhost:18081/apis/ccompat/v7"]
    assert not any(s.running or s.healthy or s.pid for s in statuses)
    assert statuses[0].log_path == settings.state_dir.resolve() / "logs" / "kafka.log"


def test_a_pid_file_of_another_process_is_not_ours(settings: Settings) -> None:
    paths = state.state_paths(settings)
    paths.run.mkdir(parents=True)
    # This test process is alive but is not a service started from this state dir.
    paths.pid_file("kafka").write_text(f"{os.getpid()}\n")
    paths.pid_file("schema-registry").write_text("not a pid\n")
    assert processes.our_pid(paths, "kafka") is None
    assert processes.our_pid(paths, "schema-registry") is None
    assert not any(s.running for s in ls.status(settings))


def test_down_with_nothing_running_is_a_noop(settings: Settings) -> None:
    messages: list[str] = []
    ls.down(settings, progress=messages.append)
    state.state_paths(settings).run.mkdir(parents=True)
    state.state_paths(settings).pid_file("kafka").write_text("999999999\n")
    ls.down(settings, progress=messages.append)
    assert messages == ["Kafka and Schema Registry are not running."] * 2
    assert not state.state_paths(settings).pid_file("kafka").exists()
