"""The data plane hosted in a Faust worker: a mode service that runs the transactional loop in its own thread.

The loop blocks in librdkafka calls (consume, commit), so it gets a thread of its own, and the
event loop keeps serving the web views, timers and control agents meanwhile. The job's state
changes (``assigned``, ``revoked``, ``process``, ``committed``, ``discard``) are run on the event loop
(:class:`OnEventLoop`), so the state, the models and their monitors are only ever touched by one
thread, the one Faust's views and timers read them from; no locks. The service starts after the
worker's start-up work (it is added as a dependency after it) and stops with the worker: the
batch in flight commits, the consumer closes (a static member keeps its partitions for a
restart), all within the worker's shutdown.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import gc
import logging
import threading
import time
from collections.abc import Callable

from mode import Service

from mlstream.streaming.transactional_loop import Job, Output, TransactionalLoop

log = logging.getLogger(__name__)

STOP_WAIT_S = 8.0  # under the 10 s a worker has to stop


class OnEventLoop:
    """A job whose state-changing calls run on ``loop`` while the caller's thread waits for them."""

    def __init__(self, job: Job, loop: asyncio.AbstractEventLoop):
        self.job = job
        self.loop = loop

    def assigned(self, partitions: dict[int, dict[bytes, bytes]]) -> None:
        self._call(self.job.assigned, partitions)

    def revoked(self, partitions: list[int]) -> None:
        self._call(self.job.revoked, partitions)

    def prepare(self, messages: list, out: Output) -> object:
        return self.job.prepare(messages, out)

    def process(self, messages: list, prepared: object, out: Output) -> None:
        self._call(self.job.process, messages, prepared, out)

    def committed(self) -> None:
        self._call(self.job.committed)

    def discard(self) -> None:
        self._call(self.job.discard)

    def _call(self, function, *args):
        done: concurrent.futures.Future = concurrent.futures.Future()

        def run() -> None:
            try:
                done.set_result(function(*args))
            except BaseException as err:
                done.set_exception(err)

        self.loop.call_soon_threadsafe(run)
        return done.result()


class DataPlaneService(Service):
    """Runs the loop that ``new_loop(job)`` makes, with ``job`` run on this service's event loop."""

    def __init__(self, new_loop: Callable[[Job], TransactionalLoop], job: Job,
                 prepare: Callable[[], None] = lambda: None):
        super().__init__()
        self._new_loop = new_loop
        self._job = job
        self._prepare = prepare
        self._event_loop: asyncio.AbstractEventLoop | None = None
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.plane: TransactionalLoop | None = None  # (not ``loop``: a mode service's loop is its event loop)
        self.crashes = 0

    async def on_start(self) -> None:
        self._event_loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._run, name="data-plane", daemon=True)
        self._thread.start()

    async def on_stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._thread.join, STOP_WAIT_S)
            if self._thread.is_alive():
                log.warning("the data plane did not stop within %.0f s; its open transaction will be aborted",
                            STOP_WAIT_S)

    def _run(self) -> None:
        frozen = False
        while not self._stopping.is_set():
            try:
                self._prepare()
                if not frozen:
                    # The start-up heap (Faust, aiokafka, numpy, river...) out of the collector's sight: a
                    # full collection over it stalled the linkage app's stream for ~100 ms, a p99 of its own.
                    gc.collect()
                    gc.freeze()
                    frozen = True
                self.plane = self._new_loop(OnEventLoop(self._job, self._event_loop))
                self.plane.run(self._stopping.is_set)
            except Exception:  # a bug must not stop the worker for good: start again from the last commit
                self.crashes += 1
                log.exception("the data plane failed; starting it again from its last commit")
                time.sleep(1.0)
