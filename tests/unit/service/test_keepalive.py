"""KeepAlive's pausing policy. The consumer here only records calls: what is checked is when
KeepAlive pauses, not how Kafka reacts (the mini-stream integration test covers that)."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from kedro_stream.service.keepalive import KeepAlive, RunTimeout


class RecordingConsumer:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def assignment(self) -> list[Any]:
        return []

    def pause(self, partitions: list[Any]) -> None:
        self.calls.append("pause")

    def resume(self, partitions: list[Any]) -> None:
        self.calls.append("resume")

    def poll(self, timeout: float) -> None:
        self.calls.append("poll")
        time.sleep(timeout)


def test_a_run_shorter_than_pause_after_never_pauses() -> None:
    consumer = RecordingConsumer()
    keepalive = KeepAlive(consumer, pause_after_s=5.0)  # type: ignore[arg-type]
    assert keepalive.call(lambda: time.sleep(0.2) or "done") == "done"
    assert consumer.calls == []


def test_a_long_run_is_polled_paused_and_resumed() -> None:
    consumer = RecordingConsumer()
    polled = threading.Event()
    keepalive = KeepAlive(consumer, pause_after_s=0.1, on_poll=polled.set)  # type: ignore[arg-type]
    assert keepalive.call(lambda: polled.wait(10) and "done") == "done"
    assert consumer.calls[0] == "pause"
    assert "poll" in consumer.calls
    assert consumer.calls[-1] == "resume"


def test_the_run_timeout_applies_before_any_pause() -> None:
    consumer = RecordingConsumer()
    release = threading.Event()
    keepalive = KeepAlive(consumer, pause_after_s=60.0)  # type: ignore[arg-type]
    with pytest.raises(RunTimeout, match=r"run_timeout_s=0\.2"):
        keepalive.call(lambda: release.wait(10), timeout_s=0.2)
    release.set()
    assert consumer.calls == []


def test_an_error_in_the_run_is_raised_on_the_caller() -> None:
    keepalive = KeepAlive(RecordingConsumer(), pause_after_s=5.0)  # type: ignore[arg-type]

    def fail() -> None:
        raise ValueError("bad record")

    with pytest.raises(ValueError, match="bad record"):
        keepalive.call(fail)


def test_runs_share_one_worker_thread() -> None:
    """A thread started per batch cost up to a few ms when the GIL was busy."""
    keepalive = KeepAlive(RecordingConsumer(), pause_after_s=5.0)  # type: ignore[arg-type]
    threads = [keepalive.call(threading.current_thread) for _ in range(5)]  # kept alive: no
    assert len(set(threads)) == 1  # identity reused by a later thread
    assert threads[0] is not threading.current_thread()


def test_after_a_timeout_the_next_run_gets_a_fresh_worker() -> None:
    keepalive = KeepAlive(RecordingConsumer(), pause_after_s=60.0)  # type: ignore[arg-type]
    release = threading.Event()
    stuck: list[int] = []
    with pytest.raises(RunTimeout):
        keepalive.call(lambda: stuck.append(threading.current_thread()) or release.wait(10), 0.2)
    try:
        assert keepalive.call(threading.current_thread, timeout_s=5) is not stuck[0]
    finally:
        release.set()
