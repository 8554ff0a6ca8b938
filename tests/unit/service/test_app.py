"""What ``consume`` builds around the loop, without a broker: the stream a command picks from
the mini project's stream.yml with its flags applied, and the signals that stop it gracefully
for as long as it runs (and no longer)."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import pytest
import yaml

from kedro_stream.config import Project
from kedro_stream.service.app import load_config, stop_on_signals

STREAM_YML = {
    "kafka": {"bootstrap_servers": "from-file:9092"},
    "metrics": {"port": 9100},
    "streams": {
        "scoring": {
            "namespace": "ns",
            "group_id": "scoring",
            "input": {"topics": ["batches"], "dataset": "batch"},
            "batch": {"max_size": 100},
        },
        "slow": {
            "namespace": "slow",
            "pipeline": "slow",
            "group_id": "slow",
            "input": {"topics": ["slow-batches"], "dataset": "batch"},
        },
    },
}


@pytest.fixture
def project(mini_project: Path) -> Path:
    (mini_project / "conf" / "base" / "stream.yml").write_text(yaml.safe_dump(STREAM_YML))
    return mini_project


def test_the_stream_reading_the_topic_is_picked_with_the_file_s_kafka_and_metrics(
    project: Path,
) -> None:
    kafka, stream, metrics = load_config(
        Project(project),
        env=None,
        topic="slow-batches",
        namespace=None,
        overrides={},
        bootstrap_servers=None,
    )

    assert (stream.namespace, stream.group_id) == ("slow", "slow")
    assert kafka.bootstrap_servers == "from-file:9092"
    assert metrics.port == 9100


def test_flags_override_the_stream_and_the_bootstrap_servers(project: Path) -> None:
    kafka, stream, _ = load_config(
        Project(project),
        env=None,
        topic="batches",
        namespace=None,
        overrides={"batch.max_size": 7, "group_id": None},  # None: the flag was not given
        bootstrap_servers="from-flag:9092",
    )

    assert stream.batch.max_size == 7
    assert stream.group_id == "scoring"
    assert kafka.bootstrap_servers == "from-flag:9092"


class Service:
    def __init__(self) -> None:
        self.stops = 0

    def stop(self) -> None:
        self.stops += 1


@pytest.fixture
def handlers() -> Iterator[list[int]]:
    """Harmless handlers of SIGTERM and SIGINT for the test's length, recording the signals
    they get: a signal the context did not catch must not end the test run."""
    got: list[int] = []

    def record(signum: int, _frame: FrameType | None) -> None:
        got.append(signum)

    before = {s: signal.signal(s, record) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield got
    finally:
        for s, handler in before.items():
            signal.signal(s, handler)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_inside_the_context_stops_the_service_and_the_old_handlers_come_back(
    signum: signal.Signals, handlers: list[int]
) -> None:
    service = Service()
    previous = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}

    with stop_on_signals(service):  # type: ignore[arg-type]
        signal.raise_signal(signum)
        assert service.stops == 1

    assert handlers == []  # the service's handler had it, not the one before
    assert {s: signal.getsignal(s) for s in previous} == previous
    signal.raise_signal(signum)
    assert (service.stops, handlers) == (1, [signum])
