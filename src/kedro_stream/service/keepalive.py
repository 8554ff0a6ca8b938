"""Keep the consumer in its group while a pipeline run (or a retry backoff) takes long.

The run happens on a worker thread while this thread keeps calling ``poll`` with the assigned
partitions paused: heartbeats, ``max.poll.interval.ms`` and rebalance callbacks all keep
working, and no new record is consumed. A record that still arrives (from a partition assigned
during the run) is put back with a seek and its partition paused.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from confluent_kafka import Consumer, TopicPartition

T = TypeVar("T")
_POLL_S = 0.05


class KeepAlive:
    def __init__(self, consumer: Consumer, on_poll: Callable[[], None] = lambda: None) -> None:
        self._consumer = consumer
        self._on_poll = on_poll  # the service's liveness: a long run is not a stuck loop
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kedro-stream-run")

    def _poll_paused(self) -> None:
        self._on_poll()
        message = self._consumer.poll(_POLL_S)
        if message is not None and message.error() is None:
            tp = TopicPartition(message.topic(), message.partition(), message.offset())
            self._consumer.pause([tp])
            self._consumer.seek(tp)

    def call(self, fn: Callable[[], T]) -> T:
        """``fn()`` on the worker thread; its exception is re-raised here."""
        future = self._pool.submit(fn)
        try:
            future.result(timeout=_POLL_S)  # short runs never pause anything
        except TimeoutError:
            pass
        if future.done():
            return future.result()
        paused = self._consumer.assignment()
        self._consumer.pause(paused)
        try:
            while not future.done():
                self._poll_paused()
            return future.result()
        finally:
            self._consumer.resume(self._consumer.assignment())

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` (a retry backoff) while staying in the group."""
        deadline = time.monotonic() + seconds
        self._consumer.pause(self._consumer.assignment())
        try:
            while time.monotonic() < deadline:
                self._poll_paused()
        finally:
            self._consumer.resume(self._consumer.assignment())

    def close(self) -> None:
        self._pool.shutdown(wait=True)
