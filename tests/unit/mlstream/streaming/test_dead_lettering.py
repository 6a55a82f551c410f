"""Registry outages pause an encode or decode; they never raise out of it, nor block the loop."""

import asyncio
import threading

import pytest

from mlstream.kafka.serde import httpx
from mlstream.streaming import dead_lettering
from mlstream.streaming.dead_lettering import when_registry_reachable


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch):
    monkeypatch.setattr(dead_lettering, "REGISTRY_RETRY_S", 0.01)


def test_a_call_is_retried_off_the_loop_until_the_registry_answers():
    calls = []

    def encode():
        calls.append(threading.current_thread() is threading.main_thread())
        if len(calls) < 3:
            raise httpx.ConnectError("[Errno 111] Connection refused")
        return b"encoded"

    async def run():
        ticks = 0

        async def tick():  # the loop stays free while the call waits
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.001)

        ticker = asyncio.create_task(tick())
        result = await when_registry_reachable(encode, "encoding a prediction")
        ticker.cancel()
        return result, ticks

    result, ticks = asyncio.run(run())
    assert result == b"encoded" and ticks > 3
    assert calls == [True, False, False]  # first on the loop, the retries in the executor
    assert dead_lettering._Outage.ongoing is False


def test_an_error_that_is_not_the_registrys_is_raised_at_once():
    def encode():
        raise ValueError("not a valid long")

    with pytest.raises(ValueError):
        asyncio.run(when_registry_reachable(encode, "encoding a prediction"))
