"""The addresses and ports the local services take, and the checks on them before and after a start."""

from __future__ import annotations

import errno
import socket

from mlstream.settings import Settings
from tools.local_services.state import KAFKA, LocalServicesError

REGISTRY_API_PATH = "/apis/ccompat/v7"

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


def kafka_bootstrap(settings: Settings) -> str:
    return f"localhost:{settings.kafka_port}"


def registry_url(settings: Settings) -> str:
    return f"http://localhost:{settings.registry_port}{REGISTRY_API_PATH}"


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


def check_ports_free(settings: Settings, service: str) -> None:
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


def port_accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False
