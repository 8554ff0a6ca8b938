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

    def _poll_paused(self) -> None:
        self._on_poll()
        message = self._consumer.poll(_POLL_S)
        if message is not None and message.error() is None:
            tp = TopicPartition(message.topic(), message.partition(), message.offset())
            self._consumer.pause([tp])
            self._consumer.seek(tp)

    def call(self, fn: Callable[[], T], timeout_s: float | None = None) -> T:
        """``fn()`` on a worker thread; its exception is re-raised here, and past ``timeout_s``
        :class:`RunTimeout` is raised while the thread is left to finish on its own.

        A daemon thread rather than an executor's: executor threads are joined at interpreter
        exit, so a hung node would keep a stopping service from exiting.
        """
        outcome: dict[str, Any] = {}
        done = threading.Event()

        def work() -> None:
            try:
                outcome["value"] = fn()
            except BaseException as error:  # re-raised on the loop's thread
                outcome["error"] = error
            finally:
                done.set()

        started = time.monotonic()
        threading.Thread(target=work, name="kedro-stream-run", daemon=True).start()

        def check_timeout() -> None:
            if timeout_s is not None and time.monotonic() - started > timeout_s:
                raise RunTimeout(f"namespace run exceeded run_timeout_s={timeout_s:g}")

        while not done.wait(_POLL_S) and time.monotonic() - started < self._pause_after_s:
            check_timeout()
        if not done.is_set():
            self._consumer.pause(self._consumer.assignment())
            try:
                while not done.is_set():
                    check_timeout()
                    self._poll_paused()
            finally:
                self._consumer.resume(self._consumer.assignment())
        if "error" in outcome:
            raise outcome["error"]
        return cast(T, outcome["value"])

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` (a retry backoff) while staying in the group."""
        deadline = time.monotonic() + seconds
        self._consumer.pause(self._consumer.assignment())
        try:
            while time.monotonic() < deadline:
                self._poll_paused()
        finally:
            self._consumer.resume(self._consumer.assignment())
