"""A metrics materializer that dies is started again; after a broker restart the app goes on and stops in 10 s.

Before, the materializer child died on the broker's NOT_COORDINATOR after a restart and was
never started again (metrics stopped reaching the store), and on SIGTERM signalling the dead
child raised ProcessLookupError: the app stayed up until SIGKILL. Here the child is killed
outright, then the session's broker is restarted (SIGTERM, then `up`) under the running app.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from mlstream.identifiers import deployment_crn
from mlstream.metrics import open_store
from mlstream.kafka.topics import init
from mlstream.scoring.model_store import FolderModelStore
from producers.datasets import examples
from producers.feed import KafkaFeedSink
from tests.conftest import isolated_settings
from tools import local_services
from tools.demo import app_stats, start_app, stop_app, wait_for, wait_for_app
from tools.local_services import processes
from tools.local_services.state import KAFKA, state_paths

pytestmark = pytest.mark.integration

BATCH = 100
STOP_WITHIN_S = 10.0


def materializer_pid(app_pid: int) -> int | None:
    """The app's child running `mlstream metrics materialize`, if there is one."""
    for task in Path(f"/proc/{app_pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            try:
                command = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
            except FileNotFoundError:
                continue
            if b"materialize" in command:
                return int(child)
    return None


def feed(settings, start: int) -> None:
    sink = KafkaFeedSink(settings)
    now = int(time.time() * 1000)
    for i, (x, y) in enumerate(list(examples("phishing"))[start:start + BATCH], start=start):
        sink.send_record({"id": f"r{i}", "source": "test", "event_time": now, "features": x})
        sink.send_label({"id": f"r{i}", "label": y, "event_time": now})
    sink.flush()


def restart_broker(services) -> None:
    paths = state_paths(services)
    pid = processes.our_pid(paths, KAFKA)
    assert pid is not None, "the session's broker is not ours to restart"
    processes.signal_group(pid, signal.SIGTERM)
    processes.wait_gone(pid, timeout_s=60)
    paths.pid_file(KAFKA).unlink(missing_ok=True)
    local_services.up(services, progress=lambda _: None)


def stored_learned(settings) -> float:
    store = open_store(settings.metrics_store_url)
    try:
        rows = store.read(model_deployment_crn=deployment_crn(settings.model, settings.app_id))
    finally:
        store.close()
    return max((r["metrics"].get("records_learned", 0) for r in rows if r["predictionUuid"] is None), default=0)


def learned(settings) -> int | None:
    return (app_stats(settings) or {}).get("model", {}).get("n_learned")


@pytest.fixture(scope="module")
def restarted_run(services, tmp_path_factory):
    settings = isolated_settings(services, tmp_path_factory.mktemp("state"))
    init(settings, say=lambda _: None)
    log_path = settings.state_dir / "app.log"
    app = start_app(settings, log_path)
    run = {"settings": settings, "log": log_path}
    try:
        wait_for_app(settings, app, log_path)
        feed(settings, 0)
        wait_for(lambda: learned(settings) == BATCH, 120, f"the first batch learned (see {log_path})")
        first = wait_for(lambda: materializer_pid(app.pid), 60, "the materializer to start")
        os.kill(first, signal.SIGKILL)
        run["second"] = wait_for(lambda: (pid := materializer_pid(app.pid)) not in (None, first) and pid, 60,
                                 f"a new materializer (see {log_path})")
        run["restarts"] = app_stats(settings)["counters"]["materializer_restarts"]
        wait_for(lambda: stored_learned(settings) == BATCH, 60, "the first batch's metrics in the store")

        restart_broker(services)
        restarted_at = time.monotonic()
        feed(settings, BATCH)
        wait_for(lambda: learned(settings) == 2 * BATCH, 180, f"the second batch learned (see {log_path})")
        run["recovered_s"] = time.monotonic() - restarted_at
        wait_for(lambda: stored_learned(settings) == 2 * BATCH, 120,
                 f"the second batch's metrics in the store after the broker restart (see {log_path})")
        run["materializer_after"] = materializer_pid(app.pid)
        assert app.poll() is None, f"the app died; see {log_path}"

        stopping = time.monotonic()
        app.send_signal(signal.SIGTERM)
        app.wait(timeout=60)
        run["stop_s"] = time.monotonic() - stopping
        run["returncode"] = app.returncode
    finally:
        stop_app(app)
    return run


def test_a_materializer_that_died_is_started_again(restarted_run):
    assert restarted_run["second"] and restarted_run["restarts"] == 1


def test_after_a_broker_restart_metrics_keep_reaching_the_store(restarted_run):
    assert restarted_run["materializer_after"] is not None


def test_sigterm_stops_the_app_within_10_s_with_the_model_checkpointed(restarted_run):
    assert restarted_run["stop_s"] < STOP_WITHIN_S, f"stopping took {restarted_run['stop_s']:.1f}s"
    assert restarted_run["returncode"] == 0
    settings = restarted_run["settings"]
    checkpoint = FolderModelStore(settings.state_dir / "models").load(settings.model, settings.model_version)
    # The export of partition 0's model (each partition learns its own; all 200 labels were learned, above).
    assert 0 < checkpoint["n_learned"] < 2 * BATCH
