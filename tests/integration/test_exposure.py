"""What the scorer exposes: loopback only, no table views, no registry password in its log.

Before, the web server listened on every interface and Faust's ``/table/<name>/<key>/``
served a waiting record's features to anyone; httpx2 logged each registry request at
INFO with its URL, ``user:password@`` included.
"""

from __future__ import annotations

import dataclasses
import time

import pytest
import requests

from mlstream.kafka.topics import init
from producers.feed import KafkaFeedSink
from tests.conftest import isolated_settings
from tools.demo import app_stats, start_app, stop_app, wait_for, wait_for_app

pytestmark = pytest.mark.integration

PASSWORD = "s3cret-pw-4711"
RECORDS = 20


def listening_addresses(port: int) -> set[str]:
    """The local addresses (hex, as /proc/net/tcp writes them) of sockets listening on ``port``."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = open(table).read().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                found.add(address)
    return found


@pytest.fixture(scope="module")
def app_with_credentials(services, tmp_path_factory):
    """The app run with a registry URL that carries a user and password (Apicurio accepts and ignores them)."""
    settings = isolated_settings(services, tmp_path_factory.mktemp("state"))
    settings = dataclasses.replace(settings, schema_registry_url=settings.schema_registry_url.replace(
        "://", f"://svc-user:{PASSWORD}@", 1))
    init(settings, say=lambda _: None)
    log_path = settings.state_dir / "app.log"
    app = start_app(settings, log_path)
    try:
        wait_for_app(settings, app, log_path)
        sink = KafkaFeedSink(settings)
        now = int(time.time() * 1000)
        for i in range(RECORDS):  # records only: they wait in awaiting-label for labels that never come
            sink.send_record({"id": f"r{i}", "source": "test", "event_time": now, "features": {"x": float(i)}})
        sink.flush()
        wait_for(lambda: (app_stats(settings) or {}).get("awaiting_label") == RECORDS, 60,
                 f"the app to score {RECORDS} records (see {log_path})")
        yield {"settings": settings, "log": log_path, "app": app}
    finally:
        stop_app(app)


def test_faust_table_views_are_off(app_with_credentials):
    port = app_with_credentials["settings"].web_port
    assert requests.get(f"http://127.0.0.1:{port}/stats/", timeout=5).status_code == 200
    for path in ("/table/", "/table/awaiting-label/", "/table/awaiting-label/r1/"):
        response = requests.get(f"http://127.0.0.1:{port}{path}", timeout=5)
        assert response.status_code == 404, f"{path} answered {response.status_code}: {response.text[:200]}"


def test_the_web_server_listens_on_loopback_only(app_with_credentials):
    addresses = listening_addresses(app_with_credentials["settings"].web_port)
    assert addresses == {"0100007F"}, f"listening on {addresses} (0100007F is 127.0.0.1)"


def test_the_registry_password_never_reaches_the_log(app_with_credentials):
    stop_app(app_with_credentials["app"])  # everything it had to say is in the log now
    log = app_with_credentials["log"].read_text(errors="replace")
    assert "HTTP Request: " in log, "no registry request was logged: the test would prove nothing"
    assert "svc-user:***@" in log
    assert PASSWORD not in log
