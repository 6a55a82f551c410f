"""A Faust worker whose timer raises at every tick keeps running when the timer is added with add_timer.

Unguarded, Faust stops the whole worker on the first exception out of a timer ("We experienced
a crash!", exit code 1): how one NaN in the scorer's report timer took the app down.
"""

from __future__ import annotations

import signal
import sys
import time

import pytest

from tests.conftest import isolated_settings
from tools.demo import start_process, wait_for

pytestmark = pytest.mark.integration

RAISING_TIMER_APP = """
import sys
from faust import Worker
from mlstream.settings import Settings
from mlstream.streaming.faust_app import add_timer, new_app

settings = Settings.from_env()
app = new_app(settings, settings.app_id, settings.web_port, 1)

async def report():
    raise ValueError("MetricValueError('log_loss': nan)")

add_timer(app, 0.5, "report", report, {})
Worker(app, loglevel="info").execute_from_commandline()
"""


def test_a_timer_that_raises_is_logged_and_counted_and_the_worker_goes_on(services, tmp_path):
    settings = isolated_settings(services, tmp_path / "state")
    log_path = tmp_path / "worker.log"
    worker = start_process([sys.executable, "-c", RAISING_TIMER_APP], settings, log_path)
    try:
        wait_for(lambda: worker.poll() is not None or log_path.read_text().count("report failed") >= 4, 120,
                 f"the timer to fail four times (see {log_path})")
        assert worker.poll() is None, f"the worker died: {log_path.read_text()[-2000:]}"
        log = log_path.read_text()
        assert "report failed; the app goes on (4 timer and task failures so far)" in log
        assert "ValueError: MetricValueError('log_loss': nan)" in log  # with its traceback
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
    assert worker.returncode == 0
