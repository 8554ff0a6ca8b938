"""When an idle stream stops: ``idle_timeout_s`` counts from the first assignment (a late
group join or a long restore is not idleness), and a stream that never heard from the cluster
fails instead of ending as if all were well."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from kedro_stream.config import KafkaConfig, Project
from kedro_stream.kafka.errors import KafkaUnreachable
from kedro_stream.service import loop
from kedro_stream.service.loop import StreamService
from tests.fake_clients import FakeConsumer, FakeProducer, FakeSession, stream_config

IDLE_TIMEOUT_S = 3.0


@dataclass
class Clock:
    now: float = 0.0

    def __call__(self) -> float:
        return self.now


@dataclass
class LateConsumer(FakeConsumer):
    """No record ever; each turn of the loop (its first, non-waiting consume) takes a second
    of ``clock``; partition 0 is assigned
    once ``assign_at`` is reached (never if ``None``). ``answers``: whether a metadata
    request gets an answer."""

    clock: Clock = field(default_factory=Clock)
    assign_at: float | None = None
    answers: bool = True
    stopped_at: float | None = None

    def subscribe(self, topics: list[str], **callbacks: Any) -> None:
        self.on_assign, self.on_revoke = callbacks["on_assign"], callbacks["on_revoke"]

    def consume(self, num_messages: int, timeout: float) -> list[Any]:
        if timeout == 0:
            self.clock.now += 1.0
        if self.assign_at is not None and not self.owned and self.clock.now >= self.assign_at:
            self.owned = [TopicPartition("in", 0)]
            assert self.on_assign is not None
            self.on_assign(self, list(self.owned))
        return []

    def list_topics(self, timeout: float) -> SimpleNamespace:
        if not self.answers:
            raise KafkaException(KafkaError(KafkaError._TRANSPORT, "all brokers down"))
        return SimpleNamespace(topics={})

    def close(self) -> None:
        self.stopped_at = self.clock.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(
        loop, "time", SimpleNamespace(monotonic=fake, perf_counter=time.perf_counter)
    )
    return fake


def run(consumer: LateConsumer) -> None:
    StreamService(
        FakeSession(),  # type: ignore[arg-type]
        stream_config(batch={"max_wait_ms": 1}),
        KafkaConfig(bootstrap_servers="kafka:9092"),
        project=Project(Path(".")),
        consumer_factory=lambda: consumer,  # type: ignore[arg-type,return-value]
        producer_factory=lambda _deliveries: FakeProducer(),  # type: ignore[arg-type,return-value]
        idle_timeout_s=IDLE_TIMEOUT_S,
    ).run()


def test_idle_time_counts_from_the_first_assignment(clock: Clock) -> None:
    assign_at = IDLE_TIMEOUT_S - 1  # a join (or a restore) that took most of the timeout
    consumer = LateConsumer(batches=[], clock=clock, assign_at=assign_at)
    run(consumer)
    assert consumer.stopped_at is not None
    assert consumer.stopped_at > assign_at + IDLE_TIMEOUT_S


def test_a_stream_never_assigned_by_a_cluster_that_answers_ends_normally(
    clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    consumer = LateConsumer(batches=[], clock=clock, assign_at=None, answers=True)
    run(consumer)
    assert "No partition of in was assigned in 3.0 s" in caplog.text
    assert consumer.stopped_at is not None and consumer.stopped_at <= IDLE_TIMEOUT_S + 1


def test_a_stream_that_never_reached_kafka_fails_at_its_idle_timeout(clock: Clock) -> None:
    consumer = LateConsumer(batches=[], clock=clock, assign_at=None, answers=False)
    with pytest.raises(KafkaUnreachable, match=r"^Never reached Kafka at kafka:9092 within 3 s"):
        run(consumer)
