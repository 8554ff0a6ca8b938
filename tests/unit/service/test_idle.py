"""``IdleWatch`` on its own, turn by turn on a made-up clock: when idle time starts counting,
what resets it, and what the stream says (or raises) when it stops. ``test_idle_stop.py``
shows the same through the loop."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from types import SimpleNamespace

import pytest
from confluent_kafka import KafkaError, KafkaException

from kedro_stream.config import KafkaConfig
from kedro_stream.kafka.errors import KafkaUnreachable
from kedro_stream.service import idle
from kedro_stream.service.idle import IdleWatch
from tests.fake_clients import stream_config

NOTHING: set[tuple[str, int]] = set()
P0 = {("in", 0)}
KAFKA = KafkaConfig(bootstrap_servers="kafka:9092")


@dataclass
class Cluster:
    """A consumer's metadata request: answered, or not (``answers``); counts the requests."""

    answers: bool = True
    asked: int = 0

    def list_topics(self, timeout: float) -> SimpleNamespace:
        self.asked += 1
        if not self.answers:
            raise KafkaException(KafkaError(KafkaError._TRANSPORT, "all brokers down"))
        return SimpleNamespace(topics={})


def test_idle_time_counts_from_the_first_assignment() -> None:
    """A late group join (or a long restore of state) is not idleness."""
    watch = IdleWatch(3.0, since=0.0)

    assert not watch.turned(2.0, NOTHING, records=False)
    assert not watch.turned(2.5, P0, records=False)  # assigned: idle from here
    assert not watch.turned(5.5, P0, records=False)
    assert watch.turned(5.6, P0, records=False)


def test_with_nothing_assigned_idle_time_counts_from_the_start() -> None:
    watch = IdleWatch(3.0, since=10.0)

    assert not watch.turned(13.0, NOTHING, records=False)
    assert watch.turned(13.1, NOTHING, records=False)


def test_a_record_resets_idle_time() -> None:
    watch = IdleWatch(3.0, since=0.0)
    watch.turned(0.0, P0, records=False)

    assert not watch.turned(2.9, P0, records=True)
    assert not watch.turned(5.8, P0, records=False)
    assert watch.turned(6.0, P0, records=False)


def test_a_rebalance_after_the_first_assignment_does_not_reset_idle_time() -> None:
    watch = IdleWatch(3.0, since=0.0)
    watch.turned(0.0, P0, records=False)

    assert not watch.turned(2.0, P0 | {("in", 1)}, records=False)
    assert watch.turned(3.1, P0 | {("in", 1)}, records=False)


def test_without_a_timeout_a_stream_is_never_idle() -> None:
    watch = IdleWatch(None, since=0.0)

    assert not watch.turned(1e9, NOTHING, records=False)
    assert not watch.turned(2e9, P0, records=False)


def test_an_assigned_stream_stops_saying_how_long_it_had_no_record(
    caplog: pytest.LogCaptureFixture,
) -> None:
    watch, cluster = IdleWatch(3.0, since=0.0), Cluster()
    watch.turned(0.0, P0, records=False)

    with caplog.at_level(logging.INFO, logger=idle.__name__):
        watch.stop(cluster, stream_config(), KAFKA)  # type: ignore[arg-type]

    assert "No record for 3.0 s: stopping" in caplog.text
    assert cluster.asked == 0  # it heard from the cluster: no need to ask


def test_a_stream_never_assigned_by_a_cluster_that_answers_warns_and_stops(
    caplog: pytest.LogCaptureFixture,
) -> None:
    watch, cluster = IdleWatch(3.0, since=0.0), Cluster()
    watch.turned(3.1, NOTHING, records=False)
    stream = stream_config(input={"topics": ["in", "more"], "dataset": "batch"})

    with caplog.at_level(logging.INFO, logger=idle.__name__):
        watch.stop(cluster, stream, KAFKA)  # type: ignore[arg-type]

    assert [r.levelno for r in caplog.records] == [logging.WARNING]
    assert (
        caplog.records[0]
        .getMessage()
        .startswith(
            "No partition of in, more was assigned in 3.0 s (does the group have more members"
        )
    )
    assert cluster.asked == 1


def test_a_stream_never_assigned_by_a_cluster_that_never_answers_is_unreachable() -> None:
    watch = IdleWatch(3.0, since=0.0)
    watch.turned(3.1, NOTHING, records=False)

    with pytest.raises(KafkaUnreachable) as raised:
        watch.stop(Cluster(answers=False), stream_config(), KAFKA)  # type: ignore[arg-type]

    assert str(raised.value).startswith(
        "Never reached Kafka at kafka:9092 within 3 s (--idle-timeout-s, with nothing assigned)"
    )
    assert isinstance(raised.value.__cause__, KafkaException)
