"""What the benchmarks that run stream processes share: a round's own topics and state, its
clean-up, and the process figures (CPU seconds, peak memory) read from ``/proc``.

Each round of a benchmark gets fresh topics under a prefix of its own, an app id (the
consumer group), a free web port and a state folder, so no round sees another's offsets,
tables or model checkpoints. Every topic of a run, changelogs included, carries
``bench-<run>-`` in its name and is deleted at the end.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import socket
import uuid
from pathlib import Path


from mlstream.kafka import clients
from mlstream.kafka.topics import create_topics, init, project_topics
from mlstream.settings import Settings, Topics

CLOCK_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class BenchRun:
    """One run of a benchmark: its id, its rounds' settings, the machine's load around it, and the
    clean-up after it (``with``): the run's topics always, its state folder unless a round failed,
    so the failed round's logs stay."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.id = uuid.uuid4().hex[:8]
        self.load_before = load_average()

    def round_settings(self, name: str, **changes) -> Settings:
        """Settings of the round ``name``: its topics, app id, web port and state folder (and ``changes``)."""
        label = f"bench-{self.id}-{name}"
        return dataclasses.replace(self.settings, topics=Topics(prefix=f"{label}.", atlas_hook=f"{label}.ATLAS_HOOK"),
                                   app_id=label, web_port=free_port(),
                                   state_dir=self.settings.state_dir / "bench" / self.id / name, **changes)

    def __enter__(self) -> "BenchRun":
        return self

    def __exit__(self, exc_type, *_) -> None:
        delete_run_topics(self.settings, self.id)
        if exc_type is None:
            shutil.rmtree(self.settings.state_dir / "bench" / self.id, ignore_errors=True)

    def machine(self) -> dict:
        """What to read the figures against: the CPUs, and the load before and after the run."""
        return {"cpus": os.cpu_count(), "load_average_before": self.load_before, "load_average_after": load_average()}


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def machine_line(machine: dict, loaded_means: str) -> str:
    """The table's last line: a loaded machine's figures are worse than the code's."""
    return (f"load average (1, 5, 15 min) before {machine['load_average_before']}, after "
            f"{machine['load_average_after']} on {machine['cpus']} CPUs: on a loaded machine {loaded_means}")


def init_round(settings: Settings) -> None:
    """The round's topics and schemas, as ``mlstream init`` makes them, except that the broker
    stamps each prediction with the time it was appended (``LogAppendTime``): one clock for
    every contender, whatever timestamp its producer sets (Quix Streams passes the input's on)."""
    predictions = next(spec for spec in project_topics(settings) if spec.name == settings.topics.predictions)
    appended = dataclasses.replace(predictions, config=predictions.config | {"message.timestamp.type": "LogAppendTime"})
    create_topics(clients.admin(settings), [appended], say=lambda _: None)
    init(settings, say=lambda _: None)


def delete_run_topics(settings: Settings, run: str) -> None:
    """Every topic of the run: the rounds' own, and the changelogs their frameworks made."""
    admin = clients.admin(settings)
    doomed = [name for name in admin.list_topics(timeout=15).topics if f"bench-{run}-" in name]
    if doomed:
        for future in admin.delete_topics(doomed).values():
            future.result(timeout=30)


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants alive now (the app runs a metrics materializer, for one)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:  # gone meanwhile
                continue
            parent = int(stat.rpartition(")")[2].split()[1])
            children.setdefault(parent, []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        tree.append(current := todo.pop())
        todo += children.get(current, [])
    return tree


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of ``pid`` and its descendants so far."""
    ticks = 0
    for member in process_tree(pid):
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of proc(5))
    return ticks / CLOCK_TICKS_PER_SECOND


def peak_rss_mb(pid: int) -> float:
    """The most resident memory ``pid`` has held (VmHWM), in MiB."""
    return _status_mb(pid, "VmHWM")


def rss_mb(pid: int) -> float:
    """The resident memory of ``pid`` now (VmRSS), in MiB; 0 for a process gone meanwhile."""
    try:
        return _status_mb(pid, "VmRSS")
    except FileNotFoundError:
        return 0.0


def _status_mb(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError(f"/proc/{pid}/status has no {field}")
