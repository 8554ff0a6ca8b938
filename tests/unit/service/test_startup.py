"""A stream's start on its own, against fake clients: the commit protocol each guarantee gets,
when the broker's kind is asked (only a stream that needs it pays a metadata request), a
stateful stream's changelog topics, and a cluster that never answers said in one line."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException

from kedro_stream.config import KafkaConfig, StreamConfig
from kedro_stream.kafka.clients import METADATA_TIMEOUT_S
from kedro_stream.kafka.errors import KafkaUnreachable
from kedro_stream.service import startup
from kedro_stream.service.commit import AtLeastOnce, DeliveryError, DeliveryFailures, ExactlyOnce
from kedro_stream.service.startup import REACH_TIMEOUT_S, Connected, start, start_wait_s
from kedro_stream.state.keeper import NoState
from kedro_stream.state.topics import TOPICS_TIMEOUT_S
from tests.fake_clients import stream_config

KAFKA = KafkaConfig(bootstrap_servers="kafka:9092")
DEVELOPMENT_BROKER = "mockCluster1a2b3c"
EXACTLY_ONCE = {"guarantee": "exactly-once", "commit_timeout_s": 7.0}


@dataclass
class Consumer:
    """Answers metadata requests with ``cluster_id``; records their timeouts and its polls."""

    cluster_id: str = "a-kafka-cluster"
    asked: list[float] = field(default_factory=list)
    polls: int = 0

    def list_topics(self, timeout: float) -> SimpleNamespace:
        self.asked.append(timeout)
        return SimpleNamespace(cluster_id=self.cluster_id, topics={})

    def poll(self, timeout: float) -> None:
        self.polls += 1


@dataclass
class Producer:
    """Acknowledges everything; records its ``init_transactions`` timeouts."""

    transactions: list[float] = field(default_factory=list)

    def init_transactions(self, timeout: float) -> None:
        self.transactions.append(timeout)

    def poll(self, timeout: float) -> int:
        return 0

    def flush(self, timeout: float) -> int:
        return 0


@dataclass
class Producers:
    """The producer factory: records the delivery callback each producer is built with."""

    callbacks: list[Any] = field(default_factory=list)
    made: list[Producer] = field(default_factory=list)

    def __call__(self, on_delivery: Any) -> Producer:
        self.callbacks.append(on_delivery)
        self.made.append(Producer())
        return self.made[-1]


@dataclass(frozen=True)
class Stateful:
    """What start asks of a stateful stream's state: its changelogs and their input topic."""

    changelogs: list[str] = field(default_factory=lambda: ["g-counts-changelog"])
    input_topic: str = "in"


@dataclass
class Changelogs:
    """Stands for ``ensure_changelogs``: records each call, then raises ``error`` if set."""

    error: Exception | None = None
    calls: list[dict[str, Any]] = field(default_factory=list)

    def __call__(self, admin: Any, input_topic: str, changelogs: list[str], **options: Any) -> None:
        self.calls.append({"admin": admin, "input_topic": input_topic, "changelogs": changelogs})
        self.calls[-1].update(options)
        if self.error is not None:
            raise self.error


ADMIN = object()


@pytest.fixture
def changelogs(monkeypatch: pytest.MonkeyPatch) -> Changelogs:
    fake = Changelogs()
    monkeypatch.setattr(startup, "make_admin", lambda kafka: ADMIN)
    monkeypatch.setattr(startup, "ensure_changelogs", fake)
    return fake


def started(
    stream: StreamConfig,
    consumer: Consumer,
    producers: Producers,
    state: Any = None,
    idle_timeout_s: float | None = None,
) -> Connected:
    return start(
        stream,
        KAFKA,
        NoState() if state is None else state,
        consumer_factory=lambda: consumer,  # type: ignore[arg-type,return-value]
        producer_factory=producers,  # type: ignore[arg-type]
        idle_timeout_s=idle_timeout_s,
        pause_after_s=1.0,
        on_poll=lambda: None,
    )


def test_at_least_once_commits_after_the_delivery_reports_of_its_producer() -> None:
    consumer, producers = Consumer(), Producers()

    connected = started(stream_config(), consumer, producers)

    assert isinstance(connected.protocol, AtLeastOnce)
    assert connected.consumer is consumer
    [callback] = producers.callbacks
    assert isinstance(callback, DeliveryFailures)
    # The protocol reads the very callback the producer reports to.
    callback(KafkaError(KafkaError.MSG_SIZE_TOO_LARGE), None)
    with pytest.raises(DeliveryError, match="1 outputs failed"):
        connected.protocol.commit([])


def test_exactly_once_commits_in_transactions_without_a_delivery_callback() -> None:
    consumer, producers = Consumer(), Producers()

    connected = started(stream_config(**EXACTLY_ONCE), consumer, producers)

    assert isinstance(connected.protocol, ExactlyOnce)
    assert producers.callbacks == [None]
    assert producers.made[0].transactions == [7.0]  # commit_timeout_s


@pytest.mark.parametrize(
    ("cluster_id", "warned"), [(DEVELOPMENT_BROKER, True), ("a-kafka-cluster", False)]
)
def test_exactly_once_on_the_development_broker_warns_that_it_keeps_no_offsets(
    cluster_id: str, warned: bool, caplog: pytest.LogCaptureFixture
) -> None:
    consumer = Consumer(cluster_id=cluster_id)
    with caplog.at_level(logging.WARNING, logger=startup.__name__):
        started(stream_config(**EXACTLY_ONCE), consumer, Producers())

    assert consumer.asked == [METADATA_TIMEOUT_S]
    said = "Exactly-once on the development broker: it stores no offset committed" in caplog.text
    assert said is warned


def test_a_stateless_at_least_once_stream_never_asks_the_broker_s_kind(
    changelogs: Changelogs,
) -> None:
    consumer = Consumer(cluster_id=DEVELOPMENT_BROKER)

    started(stream_config(), consumer, Producers())

    assert consumer.asked == []
    assert changelogs.calls == []


@pytest.mark.parametrize(
    ("cluster_id", "development_broker"), [(DEVELOPMENT_BROKER, True), ("a-kafka-cluster", False)]
)
def test_a_stateful_stream_makes_its_changelogs_the_way_its_broker_makes_topics(
    cluster_id: str, development_broker: bool, changelogs: Changelogs
) -> None:
    consumer = Consumer(cluster_id=cluster_id)

    started(stream_config(), consumer, Producers(), state=Stateful())

    [call] = changelogs.calls
    assert call["admin"] is ADMIN
    assert (call["input_topic"], call["changelogs"]) == ("in", ["g-counts-changelog"])
    assert call["development_broker"] is development_broker
    assert call["timeout_s"] == pytest.approx(start_wait_s(None), abs=1.0)
    assert consumer.asked == [METADATA_TIMEOUT_S]


def test_a_short_idle_timeout_bounds_the_start_s_requests_down_to_the_least_that_can_answer(
    changelogs: Changelogs,
) -> None:
    """A stream asked to stop when idle does not wait longer for the cluster at start; the
    changelogs' request still gets long enough to tell whether the cluster answers."""
    consumer = Consumer()

    started(stream_config(), consumer, Producers(), state=Stateful(), idle_timeout_s=1.5)

    assert consumer.asked == [1.5]
    assert changelogs.calls[0]["timeout_s"] == REACH_TIMEOUT_S


def test_a_cluster_that_never_answers_the_changelogs_request_is_unreachable(
    changelogs: Changelogs,
) -> None:
    changelogs.error = KafkaException(KafkaError(KafkaError._TRANSPORT, "all brokers down"))
    consumer = Consumer()

    with pytest.raises(KafkaUnreachable) as raised:
        started(stream_config(), consumer, Producers(), state=Stateful())

    assert str(raised.value).startswith(
        "Never reached Kafka at kafka:9092 within 0 s (a stateful stream reads its changelog "
        "topics' metadata at start): check --bootstrap-servers"
    )
    assert raised.value.__cause__ is changelogs.error
    assert consumer.polls == 1  # its client's log lines, which say why, are delivered first


def test_another_kafka_error_of_the_changelogs_request_passes_through(
    changelogs: Changelogs,
) -> None:
    changelogs.error = KafkaException(KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED))

    with pytest.raises(KafkaException) as raised:
        started(stream_config(), Consumer(), Producers(), state=Stateful())

    assert raised.value is changelogs.error


def test_a_start_waits_for_the_metadata_and_the_topics_or_the_idle_timeout_when_shorter() -> None:
    assert start_wait_s(None) == METADATA_TIMEOUT_S + TOPICS_TIMEOUT_S
    assert start_wait_s(3.0) == 3.0
    assert start_wait_s(600.0) == METADATA_TIMEOUT_S + TOPICS_TIMEOUT_S
