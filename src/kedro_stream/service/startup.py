"""A stream's start, before its first poll: the broker's kind, the commit protocol, the changelog
topics, and a cluster that never answers said in one line.

One metadata request at start tells the two things the broker's kind changes: the development
broker (librdkafka's mock cluster) stores no offset committed in a transaction, and it makes
topics by being asked for their metadata rather than by ``CreateTopics``. Only a stream that
needs one of the two (exactly-once, or changelogs) asks.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from confluent_kafka import Consumer, KafkaException, Producer

from kedro_stream.config import Guarantee, KafkaConfig, StreamConfig
from kedro_stream.kafka.client_log import CLIENT_LOG
from kedro_stream.kafka.clients import (
    METADATA_TIMEOUT_S,
    DeliveryCallback,
    is_development_broker,
    make_admin,
)
from kedro_stream.kafka.errors import KafkaUnreachable, is_no_answer
from kedro_stream.service.commit import AtLeastOnce, CommitProtocol, DeliveryFailures, ExactlyOnce
from kedro_stream.service.keepalive import KeepAlive
from kedro_stream.state.keeper import State
from kedro_stream.state.topics import TOPICS_TIMEOUT_S, ensure_changelogs

logger = logging.getLogger(__name__)
#: The least a request that asks whether the cluster answers at all may wait.
REACH_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class Connected:
    """What the loop needs of Kafka for the stream's life: its group member, the commit
    protocol (with its producer), and the keep-alive that polls the member during long runs."""

    consumer: Consumer
    protocol: CommitProtocol
    keepalive: KeepAlive


def start(
    stream: StreamConfig,
    kafka: KafkaConfig,
    state: State,
    *,
    consumer_factory: Callable[[], Consumer],
    producer_factory: Callable[[DeliveryCallback | None], Producer],
    idle_timeout_s: float | None,
    pause_after_s: float,
    on_poll: Callable[[], None],
) -> Connected:
    """The stream's clients, ready for its first poll (not yet subscribed); a stream with state
    has its changelog topics, or :class:`KafkaUnreachable` says the cluster never answered."""
    started = time.monotonic()
    wait_s = start_wait_s(idle_timeout_s)
    consumer = consumer_factory()
    development_broker = (
        bool(state.changelogs) or stream.guarantee is Guarantee.EXACTLY_ONCE
    ) and is_development_broker(consumer, min(METADATA_TIMEOUT_S, wait_s))
    protocol = _commit_protocol(
        stream, consumer, producer_factory, development_broker=development_broker
    )
    keepalive = KeepAlive(consumer, pause_after_s=pause_after_s, on_poll=on_poll)
    if state.changelogs:
        try:
            ensure_changelogs(
                make_admin(kafka),
                state.input_topic,
                state.changelogs,
                development_broker=development_broker,
                timeout_s=max(REACH_TIMEOUT_S, wait_s - (time.monotonic() - started)),
                bootstrap_servers=kafka.bootstrap_servers,
            )
        except KafkaException as exc:
            if not is_no_answer(exc):
                raise
            consumer.poll(0)  # delivers its client's log lines, which say why
            raise never_reached(
                kafka,
                round(time.monotonic() - started),
                "a stateful stream reads its changelog topics' metadata at start",
            ) from exc
    return Connected(consumer, protocol, keepalive)


def start_wait_s(idle_timeout_s: float | None) -> float:
    """How long a start may wait for the cluster's first answer: the metadata a stateful
    stream reads before it subscribes, or ``--idle-timeout-s`` when that is shorter (a stream
    asked to stop when idle must not wait longer for a cluster that never answers)."""
    wait_s = METADATA_TIMEOUT_S + TOPICS_TIMEOUT_S
    return min(wait_s, idle_timeout_s) if idle_timeout_s else wait_s


def never_reached(kafka: KafkaConfig, within_s: float, waiting_for: str) -> KafkaUnreachable:
    """The service's one-line error for a cluster that never answered, ending with the last
    failure its clients logged."""
    last = CLIENT_LOG.last_failure
    return KafkaUnreachable(
        f"Never reached Kafka at {kafka.bootstrap_servers} within {within_s:g} s ({waiting_for}): "
        "check --bootstrap-servers (kafka.bootstrap_servers in stream.yml), kafka.client's "
        "security settings and that the cluster is up" + (f"; last failure: {last}" if last else "")
    )


def _commit_protocol(
    stream: StreamConfig,
    consumer: Consumer,
    producer_factory: Callable[[DeliveryCallback | None], Producer],
    *,
    development_broker: bool,
) -> CommitProtocol:
    timeout_s = stream.commit_timeout_s
    if stream.guarantee is Guarantee.EXACTLY_ONCE:
        if development_broker:
            logger.warning(
                "Exactly-once on the development broker: it stores no offset committed in "
                "a transaction, so every start reads the topics again from the beginning. "
                "Use at-least-once with it, or a Kafka cluster"
            )
        # No delivery callback: commit_transaction fails on any failed output.
        return ExactlyOnce(consumer, producer_factory(None), timeout_s=timeout_s)
    deliveries = DeliveryFailures()
    producer = producer_factory(deliveries)
    return AtLeastOnce(consumer, producer, deliveries, flush_timeout_s=timeout_s)
