"""The Kafka metrics sink while the registry is unreachable: records wait, nothing raises."""

import dataclasses
import socket

import pytest

from mlstream.metrics import sink as sink_module
from mlstream.metrics.sink import KafkaMetricsSink, MetricsDeliveryError
from mlstream.settings import Settings


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def unreachable_registry_sink(tmp_path):
    port = closed_port()
    settings = dataclasses.replace(Settings.from_env(), schema_registry_url=f"http://127.0.0.1:{port}",
                                   bootstrap_servers=f"127.0.0.1:{port}", state_dir=tmp_path)
    sink = KafkaMetricsSink(settings)
    yield sink
    sink._deferred.clear()  # its retrying thread ends at its next try, and the producer with the sink


def test_writes_wait_for_the_registry_instead_of_raising(unreachable_registry_sink):
    sink = unreachable_registry_sink
    for i in range(5):
        sink.write({"metric_id": str(i), "prediction_uuid": None})
    assert sink.deferred == 5 and sink.deferred_dropped == 0
    with pytest.raises(MetricsDeliveryError, match="5 metric records wait for the schema registry"):
        sink.flush(timeout_s=0.1)  # on shutdown the app logs this and goes on stopping


def test_beyond_the_limit_the_oldest_are_dropped_and_counted(unreachable_registry_sink, monkeypatch):
    sink = unreachable_registry_sink
    sink.write({"metric_id": "first"})  # opens the producer and codec with the usual limit
    sink._deferred = type(sink._deferred)(sink._deferred, maxlen=3)
    for i in range(4):
        sink.write({"metric_id": str(i)})
    assert sink.deferred == 3 and sink.deferred_dropped == 2
    assert [r["metric_id"] for r in sink._deferred] == ["1", "2", "3"]
    assert sink_module.DEFERRED_LIMIT >= 10_000
