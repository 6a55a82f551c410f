"""The services as processes: spawned in their own session, found again by pid file and command line.

A marker on every service command line tells our processes from others that reuse a pid
or a port, and ties each to one state dir and the ports it was started on.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from mlstream.settings import Settings
from tools.local_services.ports import PORT_VARIABLES, service_ports
from tools.local_services.state import LocalServicesError, StatePaths

SERVICE_PROPERTY = "-Dmlstream.service"
STATE_DIR_PROPERTY = "-Dmlstream.state_dir"
# The ports a service was started on, to notice settings changed since.
PORTS_PROPERTY = "-Dmlstream.ports"


def service_markers(settings: Settings, paths: StatePaths, service: str) -> list[str]:
    """The system properties that mark a service's JVM as ours, from this state dir, on these ports."""
    return [f"{SERVICE_PROPERTY}={service}", f"{STATE_DIR_PROPERTY}={paths.root}", ports_marker(settings, service)]


def ports_marker(settings: Settings, service: str) -> str:
    return f"{PORTS_PROPERTY}=" + ",".join(str(port) for port in service_ports(settings, service).values())


def check_started_on_current_ports(settings: Settings, service: str, pid: int) -> None:
    if ports_marker(settings, service) not in _command_line(pid):
        variables = ", ".join(PORT_VARIABLES[field] for field in service_ports(settings, service))
        raise LocalServicesError(
            f"{service} (pid {pid}) is running on other ports than {variables} now say;"
            " stop it with `mlstream down` (same MLSTREAM_STATE_DIR) and start again."
        )


# Processes this interpreter started, so that it can reap them (no zombies when one
# process, e.g. a pytest session, runs both up() and down()).
_children: dict[int, subprocess.Popen] = {}


def spawn(service: str, command: list[str], paths: StatePaths, cwd: Path | None = None) -> int:
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


def our_pid(paths: StatePaths, service: str) -> int | None:
    """The pid in the service's pid file if that process is alive and is our service."""
    try:
        pid = int(paths.pid_file(service).read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    if not alive(pid):
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


def alive(pid: int) -> bool:
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


def signal_group(pid: int, sig: signal.Signals) -> None:
    # Each service leads its own session and process group (start_new_session).
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)


def wait_gone(pid: int, *, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)


def services_lock(paths: StatePaths) -> contextlib.AbstractContextManager[None]:
    """One up() or down() at a time per state dir (e.g. parallel test sessions)."""
    return file_lock(paths.lock)


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Held by one process at a time, until the block ends (or the process does)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


def log_tail(paths: StatePaths, service: str, lines: int = 20) -> str:
    logs = dict.fromkeys([paths.stdout_log(service), paths.log(service)])
    tails = []
    for log in logs:
        with contextlib.suppress(OSError):
            text = log.read_text(errors="replace").splitlines()[-lines:]
            tails.append(f"--- {log}\n" + "\n".join(text))
    return "\n".join(tails) or "(no log written)"
