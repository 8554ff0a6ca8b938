"""librdkafka's lines through ClientLog: an outage said once, then a count every REPEAT_S;
other lines deduplicated the same way; contact closes an outage, said once."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import pytest

from kedro_stream.kafka.client_log import REPEAT_S, ClientLog

REFUSED = (
    "[thrd:127.0.0.1:1/bootstrap]: 127.0.0.1:1/bootstrap: Connect to ipv4#127.0.0.1:1 failed: "
    "Connection refused (after {ms}ms in state CONNECT)"
)


@dataclass
class Clock:
    now: float = 0.0

    def __call__(self) -> float:
        return self.now


def librdkafka(log: ClientLog, text: str, *, level: int = logging.ERROR, fac: str = "FAIL") -> None:
    """A line as confluent-kafka hands it to a client's ``logger``."""
    log.log(level, "%s [%s] %s", fac, "rdkafka#consumer-1", text)


@pytest.fixture
def out() -> logging.Logger:
    return logging.getLogger("test.client_log")


def said(caplog: pytest.LogCaptureFixture) -> list[tuple[str, str]]:
    return [(r.levelname, r.getMessage()) for r in caplog.records]


def test_an_outage_is_said_once_then_counted_every_repeat_interval(
    out: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    log = ClientLog(out, clock)
    caplog.set_level(logging.INFO, out.name)
    for tick in range(250):  # 25 lines a second for 10 s, as librdkafka logs them
        clock.now = tick / 25
        librdkafka(log, REFUSED.format(ms=tick % 3))
    assert said(caplog) == [
        ("WARNING", "Cannot reach Kafka at 127.0.0.1:1 (connection refused); retrying")
    ]

    clock.now = REPEAT_S + 1
    librdkafka(log, REFUSED.format(ms=0))
    assert said(caplog)[1:] == [
        (
            "WARNING",
            "Still cannot reach Kafka at 127.0.0.1:1 (connection refused): 250 more failed "
            f"attempts in {REPEAT_S + 1:.0f} s; retrying",
        )
    ]

    clock.now += 5
    log.reached()
    log.reached()  # contact with no outage open says nothing
    assert said(caplog)[2:] == [
        ("INFO", "Reached Kafka again after 36 s (failed connection attempts: 251 to 127.0.0.1:1)")
    ]


def test_an_outage_is_one_per_address_whatever_librdkafka_calls_the_broker(
    out: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    log = ClientLog(out, clock)
    caplog.set_level(logging.INFO, out.name)
    for name in ("kafka-2:9092/bootstrap", "kafka-2:9092/2", "GroupCoordinator: kafka-2:9092"):
        librdkafka(
            log,
            f"[thrd:{name}]: {name}: Failed to resolve 'kafka-2:9092': "
            "Name or service not known (after 1ms in state CONNECT)",
        )
    librdkafka(log, REFUSED.format(ms=0))
    assert log.last_failure == "127.0.0.1:1: connection refused"
    clock.now = 2
    log.reached()
    assert log.last_failure is None
    assert said(caplog) == [
        (
            "WARNING",
            "Cannot reach Kafka at kafka-2:9092 (failed to resolve 'kafka-2:9092': Name or "
            "service not known); retrying",
        ),
        ("WARNING", "Cannot reach Kafka at 127.0.0.1:1 (connection refused); retrying"),
        (
            "INFO",
            "Reached Kafka again after 2 s (failed connection attempts: 3 to kafka-2:9092, "
            "1 to 127.0.0.1:1)",
        ),
    ]


def test_other_lines_keep_their_level_and_are_deduplicated(
    out: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    log = ClientLog(out, clock)
    caplog.set_level(logging.INFO, out.name)
    closed = "[thrd:b:9092/1]: b:9092/1: Disconnected (after 600000ms in state UP)"
    for _ in range(3):
        librdkafka(log, closed, level=logging.INFO)
    librdkafka(
        log, "[thrd:main]: Topic t partition count changed", level=logging.WARNING, fac="PART"
    )
    clock.now = REPEAT_S
    librdkafka(log, closed, level=logging.INFO)
    assert said(caplog) == [
        ("INFO", "Kafka consumer: b:9092/1: Disconnected"),
        ("WARNING", "Kafka consumer: Topic t partition count changed"),
        ("INFO", f"Kafka consumer: b:9092/1: Disconnected (3 times in {REPEAT_S:.0f} s)"),
    ]


def test_a_failure_past_the_connection_keeps_its_words(
    out: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    log = ClientLog(out, Clock())
    caplog.set_level(logging.INFO, out.name)
    broker = "sasl_plaintext://127.0.0.1:9/bootstrap"
    librdkafka(
        log,
        f"[thrd:{broker}]: {broker}: SASL authentication error: SASL Handshake not supported by "
        "broker (required by mechanism PLAIN) (after 0ms in state APIVERSION_QUERY)",
    )
    assert said(caplog) == [
        (
            "WARNING",
            "Cannot reach Kafka at 127.0.0.1:9 (SASL authentication error: SASL Handshake not "
            "supported by broker (required by mechanism PLAIN)); retrying",
        )
    ]


def test_a_connection_reset_is_an_outage_and_said_for_its_client(
    out: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    """librdkafka reports a connection the broker reset (not closed) as a failure: the outage
    is said once for every client, and the lost connection for the client that had it."""
    log = ClientLog(out, Clock())
    caplog.set_level(logging.INFO, out.name)
    reset = (
        "[thrd:b:9092/2]: b:9092/2: Disconnected: connection reset by peer (after 5ms in state UP)"
    )
    log.log(logging.WARNING, "%s [%s] %s", "FAIL", "rdkafka#producer-2", reset)
    assert said(caplog) == [
        (
            "WARNING",
            "Cannot reach Kafka at b:9092 (disconnected: connection reset by peer); retrying",
        ),
        ("INFO", "Kafka producer: b:9092/2: Disconnected: connection reset by peer"),
    ]
