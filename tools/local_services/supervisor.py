"""``up``, ``down`` and ``status``: both services started, waited for, stopped and inspected together."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from dataclasses import dataclass

from mlstream.settings import Settings
from tools.local_services import kafka, processes, registry, secured
from tools.local_services.java import find_java
from tools.local_services.ports import check_ports_free, kafka_bootstrap, registry_url, settings_mismatches
from tools.local_services.state import (KAFKA, REGISTRY, LocalServicesError, Progress, ServiceStatus, StatePaths,
                                        state_paths)

STOP_TIMEOUT_S = 30.0
MIN_JAVA = {KAFKA: kafka.MIN_JAVA, REGISTRY: registry.MIN_JAVA}
START_TIMEOUT_S = {KAFKA: kafka.START_TIMEOUT_S, REGISTRY: registry.START_TIMEOUT_S}
HEALTH_CHECKS: dict[str, Callable[..., bool]] = {KAFKA: kafka.kafka_answers, REGISTRY: registry.registry_answers}


def status(settings: Settings) -> list[ServiceStatus]:
    """Whether each service runs (our process, from our state dir) and answers."""
    paths = state_paths(settings)
    urls = {KAFKA: kafka_bootstrap(settings), REGISTRY: registry_url(settings)}
    statuses = []
    for name in (KAFKA, REGISTRY):
        pid = processes.our_pid(paths, name)
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
    with processes.services_lock(paths):
        before = {s.name: s for s in status(settings)}
        if all(s.healthy for s in before.values()):
            progress(_already_running_message(before.values()))
            _grant_if_secured(settings, paths, progress)  # these settings' prefix and app id may be new
            return list(before.values())

        kafka_version = kafka.kafka_version()
        registry_version = registry.registry_version()
        titles = {KAFKA: f"Kafka {kafka_version}", REGISTRY: f"Apicurio Registry {registry_version}"}
        to_start = [name for name, service in before.items() if not service.running]
        for name, service in before.items():
            if service.running:
                processes.check_started_on_current_ports(settings, name, service.pid)
        # Everything that can fail does so before any process starts.
        kafka_lib = kafka.ensure_kafka_jars(settings.cache_dir, kafka_version, progress)
        registry_home = registry.ensure_registry_app(settings.cache_dir, registry_version, progress)
        javas = {name: find_java(MIN_JAVA[name], what=titles[name]) for name in to_start}
        for name in to_start:
            check_ports_free(settings, name)

        # One of ours that runs but does not answer yet may still be starting.
        waits = [
            _PendingStart(name, service.pid, time.monotonic(), START_TIMEOUT_S[name])
            for name, service in before.items()
            if service.running
        ]
        paths.logs.mkdir(parents=True, exist_ok=True)
        if KAFKA in to_start:
            kafka.format_kafka_storage_once(settings, paths, javas[KAFKA], kafka_lib, progress)
            progress(f"Starting {titles[KAFKA]} on {kafka_bootstrap(settings)} (log: {paths.log(KAFKA)})")
            pid = processes.spawn(KAFKA, kafka.kafka_command(settings, javas[KAFKA], kafka_lib), paths)
            waits.append(_PendingStart(KAFKA, pid, time.monotonic(), START_TIMEOUT_S[KAFKA]))
        if REGISTRY in to_start:
            progress(f"Starting {titles[REGISTRY]} on {registry_url(settings)} (log: {paths.log(REGISTRY)})")
            command = registry.registry_command(settings, javas[REGISTRY], registry_home)
            pid = processes.spawn(REGISTRY, command, paths, cwd=registry_home)
            waits.append(_PendingStart(REGISTRY, pid, time.monotonic(), START_TIMEOUT_S[REGISTRY]))

        _wait_until_healthy(settings, paths, waits, progress)
        _grant_if_secured(settings, paths, progress)
        return status(settings)


def _grant_if_secured(settings: Settings, paths: StatePaths, progress: Progress) -> None:
    """On the secured broker, grant the client user the ACLs of these settings (granting again changes nothing)."""
    if secured.is_secured(settings):
        count = secured.grant_app_acls(settings, paths)
        progress(f"ACLs: {count} bindings for User:{secured.CLIENT_USER} on prefix {settings.topics.prefix}, "
                 f"app id {settings.app_id}, {settings.topics.atlas_hook}, groups and transactional ids; clients "
                 f"log in as {secured.CLIENT_USER} (password in {secured.password_file(paths, secured.CLIENT_USER)})")


def down(settings: Settings, *, progress: Progress = print) -> None:
    """Stop both services: SIGTERM, then SIGKILL after a timeout. Nothing running is a no-op."""
    paths = state_paths(settings)
    if not paths.run.exists():
        progress("Kafka and Schema Registry are not running.")
        return
    with processes.services_lock(paths):
        running = {name: pid for name in (REGISTRY, KAFKA) if (pid := processes.our_pid(paths, name)) is not None}
        for name in (REGISTRY, KAFKA):
            if name not in running:
                paths.pid_file(name).unlink(missing_ok=True)
        if not running:
            progress("Kafka and Schema Registry are not running.")
            return
        # Signalled together: neither needs the other to shut down cleanly.
        for name, pid in running.items():
            progress(f"Stopping {name} (pid {pid})")
            processes.signal_group(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for name, pid in running.items():
            while processes.alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if processes.alive(pid):
                progress(f"{name} (pid {pid}) did not stop within {STOP_TIMEOUT_S:.0f}s; killing it")
                processes.signal_group(pid, signal.SIGKILL)
                processes.wait_gone(pid, timeout_s=10.0)
            paths.pid_file(name).unlink(missing_ok=True)
        progress("Stopped.")


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
            elif not processes.alive(start.pid):
                paths.pid_file(start.service).unlink(missing_ok=True)
                raise LocalServicesError(
                    f"{start.service} exited while starting. Last lines of its log:\n"
                    + processes.log_tail(paths, start.service)
                )
            elif elapsed > start.timeout_s:
                raise LocalServicesError(
                    f"{start.service} (pid {start.pid}) did not answer within {start.timeout_s:.0f}s;"
                    f" see {paths.log(start.service)}. `mlstream down` stops it."
                    f" Last lines of its log:\n" + processes.log_tail(paths, start.service)
                )
        if waiting:
            time.sleep(0.2)


def _already_running_message(statuses) -> str:
    described = ", ".join(f"{s.name} at {s.url} (pid {s.pid})" for s in statuses)
    return f"Already running: {described}."
