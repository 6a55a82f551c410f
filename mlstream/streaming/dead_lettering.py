"""Decoding with a dead-letter fallback, shared by the data plane's jobs (scorer, linker).

A message that cannot be decoded goes to the dead-letter topic with its bytes and the
reason, in the batch's transaction, is counted, and the batch moves on
(:class:`DeadLetters`). A registry that cannot be reached is not the message's fault: the
job waits and retries instead; so do the Faust agents of the control topics when they
encode what they send (:func:`when_registry_reachable`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from typing import TypeVar

from mlstream.kafka.dead_letters import PROCESSING_FAILED, dead_letter
from mlstream.kafka.serde import TopicCodec, UndecodableValue, registry_unavailable
from mlstream.streaming.transactional_loop import Output

log = logging.getLogger(__name__)

REGISTRY_RETRY_S = 2.0
T = TypeVar("T")


class _Outage:
    """Whether the last registry call of this process found the registry unreachable."""

    ongoing = False


async def when_registry_reachable(call: Callable[[], T], what: str,
                                  retryable: Callable[[Exception], bool] = registry_unavailable) -> T:
    """``call()`` (an encode or decode), retried every :data:`REGISTRY_RETRY_S` while the registry is unreachable.

    Outside an outage it runs on the loop: a codec's schemas are cached after their first use,
    so it usually costs no request at all. During one it runs off the loop: a failing registry
    call takes seconds (the client's own retries; a registry that hangs instead of refusing,
    its 30 s timeout), and that must stall this message alone, never the loop (``/stats/``,
    the other agent and the timers go on). An error ``retryable`` does not accept is raised at once.
    """
    loop = asyncio.get_running_loop()
    retrying = False
    while True:
        try:
            result = await loop.run_in_executor(None, call) if _Outage.ongoing else call()
        except Exception as err:
            if not retryable(err):
                raise
            _Outage.ongoing = retrying = True
            log.warning("schema registry unavailable while %s (%s: %s); retrying in %.0fs", what,
                        type(err).__name__, err, REGISTRY_RETRY_S)
            await asyncio.sleep(REGISTRY_RETRY_S)
            continue
        if retrying:  # only a call that failed says the outage is over: one that never needed the registry cannot
            _Outage.ongoing = False
            log.info("schema registry answers again (%s)", what)
        return result


def wait_for_registry(codecs: Iterable[TopicCodec]) -> None:
    """Ready every codec before a data plane's first batch, waiting while the registry cannot be reached.

    Schemas are looked up and parsed now, not on the first message; an app started while the
    registry is down waits here and starts when it comes back.
    """
    for codec in codecs:
        while True:
            try:
                codec.warm_up()
                break
            except Exception as err:
                log.warning("waiting for the schema registry (%s): %s; retrying in %ss", codec.topic, err,
                            REGISTRY_RETRY_S)
                time.sleep(REGISTRY_RETRY_S)


class DeadLetters:
    """Dead-lettering on the data plane: into the batch's transaction, counted in ``counters["dead_letters"]``."""

    def __init__(self, topic: str, codec: TopicCodec, app_id: str, counters: dict):
        self.topic = topic
        self.codec = codec  # the dead-letter topic's
        self.app_id = app_id
        self.counters = counters

    def decode(self, message, codec: TopicCodec, out: Output) -> dict | None:
        """``message``'s value decoded by ``codec``, or None once dead-lettered; waits while the registry is away.

        Called in the loop's thread before the batch touches any state (``Job.prepare``), so
        waiting costs no transaction timeout: nothing has been produced in it yet.
        """
        while True:
            try:
                return codec.decode(message.value())
            except UndecodableValue as err:
                self.send(message, err.kind, err.message, out)
                return None
            except Exception as err:
                if not registry_unavailable(err):  # not the registry's absence: retrying would never end
                    self.send(message, PROCESSING_FAILED, f"{type(err).__name__}: {err}", out)
                    return None
                log.warning("registry unavailable while decoding %s[%s]@%s (%s); retrying in %ss", message.topic(),
                            message.partition(), message.offset(), err, REGISTRY_RETRY_S)
                time.sleep(REGISTRY_RETRY_S)

    def send(self, message, error_type: str, error_message: str, out: Output) -> None:
        _, timestamp_ms = message.timestamp()
        letter = dead_letter(message.topic(), message.partition(), message.offset(), timestamp_ms, message.key(),
                             message.value(), message.headers(), error_type, error_message, self.app_id)
        out.produce(self.topic, self.codec.encode(letter), key=message.key())
        self.counters["dead_letters"] += 1
        log.warning("dead-lettered %s[%s]@%s: %s", message.topic(), message.partition(), message.offset(), error_type)
