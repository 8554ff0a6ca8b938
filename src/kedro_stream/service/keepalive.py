"""Keep the consumer in its group while a pipeline run (or a retry backoff) takes long.

The run happens on a worker thread. Heartbeats need nothing from us (librdkafka sends them from
its own thread); only ``max.poll.interval.ms`` and rebalance callbacks need ``poll``. So a run
that lasts past ``pause_after_s`` gets its consumer polled with the assigned partitions paused:
no new record is consumed, and a record that still arrives (from a partition assigned during the
run) is put back with a seek and its partition paused.

Shorter runs are not paused, because pausing is not free: librdkafka drops the partitions'
prefetched records and fetches again only about a second after the pause, a stall that would
cap a stream of 100 ms runs at under one batch a second.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar, cast

from confluent_kafka import Consumer, TopicPartition

from kedro_stream.errors import KedroStreamError

T = TypeVar("T")
_POLL_S = 0.05


class RunTimeout(KedroStreamError):
    """A namespace run outlived ``run_timeout_s``; its thread is abandoned, still running."""


class KeepAlive:
    """Runs the namespace (or waits out a backoff) while the consumer stays in its group."""

    def __init__(
        self,
        consumer: Consumer,
        *,
        pause_after_s: float,
        on_poll: Callable[[], None] = lambda: None,
    ) -> None:
        self._consumer = consumer
        self._pause_after_s = pause_after_s
        self._on_poll = on_poll  # the service's liveness: a long run is not a stuck loop
        self._worker: _Worker | None = None

    def _poll_paused(self) -> None:
        self._on_poll()
        message = self._consumer.poll(_POLL_S)
        if message is not None and message.error() is None:
            tp = TopicPartition(message.topic(), message.partition(), message.offset())
            self._consumer.pause([tp])
            self._consumer.seek(tp)

    def call(self, fn: Callable[[], T], timeout_s: float | None = None) -> T:
        """``fn()`` on the worker thread; its exception is re-raised here, and past
        ``timeout_s`` :class:`RunTimeout` is raised while the thread is left to finish on its
        own (the next call gets a new worker)."""
        if self._worker is None:
            self._worker = _Worker()
        call = self._worker.submit(fn)
        started = time.monotonic()

        def check_timeout() -> None:
            if timeout_s is not None and time.monotonic() - started > timeout_s:
                self._worker = None  # still busy with the abandoned run
                raise RunTimeout(f"namespace run exceeded run_timeout_s={timeout_s:g}")

        while not call.done.wait(_POLL_S) and time.monotonic() - started < self._pause_after_s:
            check_timeout()
        if not call.done.is_set():
            self._consumer.pause(self._consumer.assignment())
            try:
                while not call.done.is_set():
                    check_timeout()
                    self._poll_paused()
            finally:
                self._consumer.resume(self._consumer.assignment())
        return cast(T, call.result())

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` (a retry backoff) while staying in the group."""
        deadline = time.monotonic() + seconds
        self._consumer.pause(self._consumer.assignment())
        try:
            while time.monotonic() < deadline:
                self._poll_paused()
        finally:
            self._consumer.resume(self._consumer.assignment())


class _Call:
    def __init__(self, fn: Callable[[], Any]) -> None:
        self.fn = fn
        self.done = threading.Event()
        self._value: Any = None
        self._error: BaseException | None = None

    def run(self) -> None:
        try:
            self._value = self.fn()
        except BaseException as error:  # re-raised on the caller's thread
            self._error = error
        finally:
            self.done.set()

    def result(self) -> Any:
        if self._error is not None:
            raise self._error
        return self._value


class _Worker:
    """One daemon thread running the calls it is given, one at a time, for the service's
    life: starting a thread per batch cost up to a few ms when the GIL was busy.

    A daemon thread rather than an executor's: executor threads are joined at interpreter
    exit, so a hung node would keep a stopping service from exiting.
    """

    def __init__(self) -> None:
        self._calls: queue.SimpleQueue[_Call] = queue.SimpleQueue()
        threading.Thread(target=self._serve, name="kedro-stream-run", daemon=True).start()

    def submit(self, fn: Callable[[], Any]) -> _Call:
        call = _Call(fn)
        self._calls.put(call)
        return call

    def _serve(self) -> None:
        while True:
            self._calls.get().run()
