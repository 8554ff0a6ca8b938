"""The commit protocols: offsets are stored only once every output is acknowledged.

at-least-once: produce → flush → every delivery report OK → synchronous commit of exactly the
processed offsets. exactly-once: one transaction per batch holding the outputs and the offsets
(``send_offsets_to_transaction``); no separate offset commit ever happens.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Protocol

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from kedro_stream.service.messages import Outgoing

logger = logging.getLogger(__name__)

# The group moved on while the batch ran: this member no longer owns (some of) its partitions.
_REBALANCE_CODES = frozenset(
    {
        KafkaError.REBALANCE_IN_PROGRESS,
        KafkaError.ILLEGAL_GENERATION,
        KafkaError.UNKNOWN_MEMBER_ID,
        KafkaError.FENCED_INSTANCE_ID,
    }
)
_COMMIT_ATTEMPTS = 3


class DeliveryError(Exception):
    """Some outputs were not acknowledged by the broker: the batch must not be committed."""


class CommitAbandoned(Exception):
    """A rebalance overtook the batch: its offsets cannot be committed by this member.

    Not a processing failure: the batch is neither retried nor dead-lettered. Its records are
    processed again, by this member for partitions it kept (at-least-once: outputs repeat).
    """


def _kafka_error(exc: KafkaException) -> KafkaError | None:
    error = exc.args[0] if exc.args else None
    return error if isinstance(error, KafkaError) else None


def _commit(consumer: Consumer, offsets: list[TopicPartition]) -> None:
    for attempt in range(1, _COMMIT_ATTEMPTS + 1):
        try:
            consumer.commit(offsets=offsets, asynchronous=False)
            return
        except KafkaException as exc:
            error = _kafka_error(exc)
            if error is not None and error.code() in _REBALANCE_CODES:
                raise CommitAbandoned(str(error)) from exc
            if error is None or not error.retriable() or attempt == _COMMIT_ATTEMPTS:
                raise
            time.sleep(0.1 * attempt)  # coordinator moving: outputs are safe, retry the commit


class CommitProtocol(Protocol):
    def begin(self) -> None: ...

    def publish(self, messages: Iterable[Outgoing]) -> None: ...

    def complete(self, offsets: list[TopicPartition]) -> None: ...

    def abort(self) -> None: ...

    def close(self) -> None: ...


class _Deliveries:
    """Collects delivery reports of one batch."""

    def __init__(self) -> None:
        self.failed: list[KafkaError] = []

    def __call__(self, error: KafkaError | None, _message: Message) -> None:
        if error is not None:
            self.failed.append(error)


def _produce(
    producer: Producer, messages: Iterable[Outgoing], on_delivery: _Deliveries | None
) -> None:
    for m in messages:
        while True:
            try:
                producer.produce(
                    m.topic, value=m.value, key=m.key, headers=m.headers, on_delivery=on_delivery
                )
                break
            except BufferError:  # local queue full: let deliveries drain, then retry
                producer.poll(0.05)
        producer.poll(0)


class AtLeastOnce:
    def __init__(self, consumer: Consumer, producer: Producer, *, flush_timeout_s: float) -> None:
        self._consumer = consumer
        self._producer = producer
        self._flush_timeout_s = flush_timeout_s
        self._deliveries = _Deliveries()

    def begin(self) -> None:
        self._deliveries = _Deliveries()

    def publish(self, messages: Iterable[Outgoing]) -> None:
        _produce(self._producer, messages, self._deliveries)

    def complete(self, offsets: list[TopicPartition]) -> None:
        pending = self._producer.flush(self._flush_timeout_s)
        if pending:
            raise DeliveryError(
                f"{pending} outputs not acknowledged within {self._flush_timeout_s} s"
            )
        if self._deliveries.failed:
            first = self._deliveries.failed[0]
            raise DeliveryError(f"{len(self._deliveries.failed)} outputs failed: {first}")
        if offsets:
            _commit(self._consumer, offsets)

    def abort(self) -> None:
        """Outputs already produced stay: at-least-once, the batch is processed again."""
        self._producer.flush(self._flush_timeout_s)

    def close(self) -> None:
        self._producer.flush(self._flush_timeout_s)


class ExactlyOnce:
    def __init__(self, consumer: Consumer, producer: Producer, *, timeout_s: float) -> None:
        self._consumer = consumer
        self._producer = producer
        self._timeout_s = timeout_s
        self._open = False
        producer.init_transactions(timeout_s)  # fences an older instance with the same id

    def begin(self) -> None:
        self._producer.begin_transaction()
        self._open = True

    def publish(self, messages: Iterable[Outgoing]) -> None:
        _produce(self._producer, messages, None)  # commit_transaction fails on any failed output

    def complete(self, offsets: list[TopicPartition]) -> None:
        try:
            if offsets:
                self._producer.send_offsets_to_transaction(
                    offsets, self._consumer.consumer_group_metadata(), self._timeout_s
                )
            self._producer.commit_transaction(self._timeout_s)  # flushes; fails on a failed output
        except KafkaException as exc:
            error = _kafka_error(exc)
            if error is not None and error.code() in _REBALANCE_CODES:
                raise CommitAbandoned(str(error)) from exc
            raise
        self._open = False

    def abort(self) -> None:
        if self._open:
            self._open = False
            self._producer.abort_transaction(self._timeout_s)

    def close(self) -> None:
        """Abort an open transaction at shutdown; a fenced or failed producer cannot, and its
        transaction is aborted by the broker instead, so that must not mask the stop reason."""
        try:
            self.abort()
        except KafkaException as exc:
            logger.warning("Open transaction left to the broker to abort: %s", exc)
