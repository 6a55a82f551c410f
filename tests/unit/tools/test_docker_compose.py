"""docker-compose.yml must agree with the local scripts: same ports, topics and variable names."""

import json
from pathlib import Path

import yaml

from mlstream.settings import DEFAULTS, REPO_ROOT, Settings, Topics
from apps.linker.settings import DEFAULTS as LINKAGE_DEFAULTS

COMPOSE = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
APP_SERVICES = ("init", "stream-app", "producer", "linkage-app", "linkage-feed")


def host_ports(service: str) -> set[str]:
    """The host ports of ``service``'s mappings ("[host address:]host port:container port")."""
    return {mapping.split(":")[-2] for mapping in SERVICES[service].get("ports", [])}


def test_it_has_kafka_a_confluent_registry_the_app_and_a_producer():
    assert {"kafka", "schema-registry", "init", "stream-app", "producer"} <= set(SERVICES)
    assert SERVICES["schema-registry"]["image"].startswith("confluentinc/cp-schema-registry:")
    assert "broker,controller" in SERVICES["kafka"]["environment"]["KAFKA_PROCESS_ROLES"]  # KRaft, no ZooKeeper


def test_prometheus_scrapes_both_apps_and_grafana_provisions_its_dashboard():
    prometheus = SERVICES["prometheus"]
    mounts = dict(volume.split(":")[:2] for volume in prometheus["volumes"] if volume.startswith("./"))
    config = yaml.safe_load((REPO_ROOT / "infra/monitoring/prometheus.yml").read_text())
    assert mounts["./infra/monitoring/prometheus.yml"] in " ".join(prometheus["command"])
    targets = {target for job in config["scrape_configs"] for c in job["static_configs"] for target in c["targets"]}
    assert targets == {f"stream-app:{DEFAULTS['MLSTREAM_WEB_PORT']}",
                       f"linkage-app:{LINKAGE_DEFAULTS['MLSTREAM_LINKAGE_WEB_PORT']}"}
    assert all(job["metrics_path"] == "/metrics" for job in config["scrape_configs"])
    assert {"stream-app", "linkage-app"} <= set(prometheus["depends_on"])

    grafana = SERVICES["grafana"]
    mounted = {source: target for source, target, *_ in (v.split(":") for v in grafana["volumes"])}
    provisioning = REPO_ROOT / "infra/monitoring/grafana/provisioning"
    assert mounted["./infra/monitoring/grafana/provisioning"] == "/etc/grafana/provisioning"
    (source,) = yaml.safe_load((provisioning / "datasources/prometheus.yml").read_text())["datasources"]
    assert source["type"] == "prometheus" and source["url"] == "http://prometheus:9090"
    (provider,) = yaml.safe_load((provisioning / "dashboards/mlstream.yml").read_text())["providers"]
    assert mounted["./infra/monitoring/grafana/dashboards"] == provider["options"]["path"]
    dashboard = json.loads((REPO_ROOT / "infra/monitoring/grafana/dashboards/mlstream.json").read_text())
    sources = {t["datasource"]["uid"] for p in dashboard["panels"] for t in p.get("targets", [])}
    assert sources == {source["uid"]}


def test_the_monitoring_ports_listen_on_localhost_only():
    for name in ("prometheus", "grafana"):
        assert all(mapping.startswith("127.0.0.1:") for mapping in SERVICES[name]["ports"]), name
    # inside their containers the apps listen on every interface, for Prometheus across the compose network
    assert COMPOSE["x-mlstream-env"]["MLSTREAM_WEB_BIND"] == "0.0.0.0"


def test_images_are_pinned():
    for name, service in SERVICES.items():
        if "image" in service:
            assert ":" in service["image"] and not service["image"].endswith(":latest"), name


def test_ports_match_the_local_services():
    assert DEFAULTS["MLSTREAM_KAFKA_PORT"] in host_ports("kafka")
    assert DEFAULTS["MLSTREAM_REGISTRY_PORT"] in host_ports("schema-registry")
    assert DEFAULTS["MLSTREAM_WEB_PORT"] in host_ports("stream-app")
    assert LINKAGE_DEFAULTS["MLSTREAM_LINKAGE_WEB_PORT"] in host_ports("linkage-app")
    kafka_env = SERVICES["kafka"]["environment"]
    assert f"PLAINTEXT://localhost:{DEFAULTS['MLSTREAM_KAFKA_PORT']}" in kafka_env["KAFKA_ADVERTISED_LISTENERS"]
    assert f":{DEFAULTS['MLSTREAM_KAFKA_CONTROLLER_PORT']}" in kafka_env["KAFKA_CONTROLLER_QUORUM_VOTERS"]


def test_app_services_use_only_known_variables_with_the_same_topic_names():
    for name in APP_SERVICES:
        env = SERVICES[name]["environment"]
        unknown = {k for k in env if k.startswith("MLSTREAM_")} - set(DEFAULTS) - set(LINKAGE_DEFAULTS)
        assert not unknown, f"{name} sets variables the code does not read: {unknown}"
        for same in ("MLSTREAM_TOPIC_PREFIX", "MLSTREAM_ATLAS_HOOK_TOPIC", "MLSTREAM_PARTITIONS",
                     "MLSTREAM_APP_ID", "MLSTREAM_WEB_PORT", "MLSTREAM_MODEL"):
            assert str(env[same]) == DEFAULTS[same], f"{name}: {same}"
        for same in ("MLSTREAM_LINKAGE_CONFIG", "MLSTREAM_LINKAGE_APP_ID", "MLSTREAM_LINKAGE_WEB_PORT"):
            assert str(env[same]) == LINKAGE_DEFAULTS[same], f"{name}: {same}"
    assert Topics(COMPOSE["x-mlstream-env"]["MLSTREAM_TOPIC_PREFIX"]).records == Topics().records


def test_the_apps_web_servers_are_published_on_the_host_loopback_only():
    assert COMPOSE["x-mlstream-env"]["MLSTREAM_WEB_BIND"] == "0.0.0.0"  # inside the container, to be published
    for name in ("stream-app", "linkage-app"):
        for mapping in SERVICES[name]["ports"]:
            assert mapping.startswith("127.0.0.1:"), f"{name} publishes {mapping} on every host interface"


def test_app_services_reach_kafka_and_the_registry_inside_the_compose_network():
    env = SERVICES["stream-app"]["environment"]
    assert env["MLSTREAM_BOOTSTRAP_SERVERS"].split(":")[0] == "kafka"
    assert env["MLSTREAM_SCHEMA_REGISTRY_URL"].startswith("http://schema-registry:8081")


def test_commands_are_real_subcommands():
    from tools.cli import build_parser

    parser = build_parser()
    for name in APP_SERVICES:
        command = SERVICES[name]["command"]
        assert command[0] == "mlstream"
        parser.parse_args(command[1:])  # exits (fails the test) on an unknown subcommand or flag


def test_dockerfile_copies_every_package():
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()
    for folder in ("mlstream", "producers", "apps", "tools", "models", "linkage", "spark_jobs"):
        assert f"COPY {folder} {folder}" in dockerfile
    assert isinstance(Settings.from_env().state_dir, Path)


def test_settings_round_trip_through_the_environment(monkeypatch):
    settings = Settings.from_env()
    for name, value in settings.to_env().items():
        monkeypatch.setenv(name, value)
    assert set(settings.to_env()) == set(DEFAULTS)
    assert Settings.from_env() == settings
