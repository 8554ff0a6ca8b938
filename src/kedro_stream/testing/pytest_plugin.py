"""pytest fixtures for tests against a real broker process: ``kafka_broker``, ``fault_injector``,
and the ``unsupported_broker(kind, reason)`` marker.

The marker exists so that a broker's defect never weakens an assertion: the test keeps its full
assertion and is skipped, with the reason, on the broker kind that cannot pass it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import get_args

import pytest

from kedro_stream.devbroker.control import FaultInjector
from kedro_stream.testing import brokers
from kedro_stream.testing.brokers import BrokerHandle, BrokerKind


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``unsupported_broker`` marker, so ``--strict-markers`` knows it."""
    config.addinivalue_line(
        "markers",
        "unsupported_broker(kind, reason): skip the test when the session's broker is of this "
        "kind (external, testcontainers, embedded) because that broker cannot pass it",
    )


@pytest.fixture(scope="session")
def kafka_broker() -> Iterator[BrokerHandle]:
    """One broker for the whole session (see :func:`kedro_stream.testing.brokers.kafka_broker`);
    tests isolate themselves with unique topic and group names."""
    with brokers.kafka_broker() as handle:
        yield handle


@pytest.fixture
def fault_injector(kafka_broker: BrokerHandle) -> Iterator[FaultInjector]:
    """The broker's fault injection, reset after the test; skips where the broker has none."""
    if kafka_broker.faults is None:
        pytest.skip(
            f"the {kafka_broker.kind} broker has no fault injection; only the embedded broker "
            "has (unset KAFKA_BOOTSTRAP_SERVERS and run without Docker to use it)"
        )
    yield kafka_broker.faults
    kafka_broker.faults.reset()


@pytest.fixture(autouse=True)
def _skip_unsupported_broker(request: pytest.FixtureRequest) -> None:
    """Apply ``unsupported_broker`` markers; starts the broker only for marked tests."""
    markers = list(request.node.iter_markers("unsupported_broker"))
    if not markers:
        return
    kind = request.getfixturevalue("kafka_broker").kind
    for marker in markers:
        marked_kind = marker.kwargs.get("kind", marker.args[0] if marker.args else None)
        reason = marker.kwargs.get("reason", marker.args[1] if len(marker.args) > 1 else None)
        if marked_kind not in get_args(BrokerKind) or not reason:
            raise pytest.UsageError(
                f"{request.node.nodeid}: use @pytest.mark.unsupported_broker(kind, reason) with "
                f"kind one of {', '.join(get_args(BrokerKind))}"
            )
        if marked_kind == kind:
            pytest.skip(f"unsupported on the {kind} broker: {reason}")
