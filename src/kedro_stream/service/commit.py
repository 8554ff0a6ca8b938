"""The commit protocols: offsets are stored only once every output is acknowledged.

at-least-once: produce → flush → every delivery report OK → synchronous commit of exactly the
processed offsets. A rebalance that refuses that commit defers it, since the outputs are
acknowledged and running the batch again would publish them twice: the offsets are committed by
the next commit the group allows, or in the revoke callback while this member still owns their
partitions (as Kafka Streams commits on revocation).

exactly-once: one transaction per batch holding the outputs and the offsets
(``send_offsets_to_transaction``); no separate offset commit ever happens.

These are steps 6 (publish) and 7 (commit) of the loop's protocol (``service/loop.py``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Protocol

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from kedro_stream.errors import KedroStreamError, headline
from kedro_stream.kafka.errors import kafka_error
from kedro_stream.records import Outgoing
from kedro_stream.service.retry import Backoff

logger = logging.getLogger(__name__)

# The group moved on while the batch ran: this member no longer owns (some of) its partitions.
_REBALANCE_CODES = frozenset(
    {
        KafkaError.REBALANCE_IN_PROGRESS,
        KafkaError.ILLEGAL_GENERATION,
        KafkaError.UNKNOWN_MEMBER_ID,
        KafkaError.FENCED_INSTANCE_ID,
        # The next-generation protocol (KIP-848) fences commits by member epoch instead.
        KafkaError.STALE_MEMBER_EPOCH,
        KafkaError.FENCED_MEMBER_EPOCH,
    }
)
# Errors that say "ask again shortly" without the flag librdkafka uses for them elsewhere.
_TRANSIENT_CODES = frozenset(
    {
        KafkaError.REQUEST_TIMED_OUT,
        KafkaError._TIMED_OUT,
        KafkaError.COORDINATOR_NOT_AVAILABLE,
        KafkaError.NOT_COORDINATOR,
        KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
        KafkaError.NETWORK_EXCEPTION,
        KafkaError._TRANSPORT,
        KafkaError._WAIT_COORD,
    }
)
#: How long a commit step is retried before the batch counts as failed. The outputs are already
#: acknowledged, so asking the coordinator again is far cheaper than processing the batch again.
_COMMIT_RETRY_BUDGET_S = 10.0
_COMMIT_BACKOFF = Backoff(first_s=0.05, max_s=1.0)
#: How long a producer whose local queue is full is polled before producing again.
_QUEUE_FULL_POLL_S = 0.05


class DeliveryError(KedroStreamError):
    """Some outputs were not acknowledged by the broker: the batch must not be committed."""


class CommitAbandoned(KedroStreamError):
    """A rebalance overtook the batch's transaction (exactly-once): it is aborted, so none of
    its outputs is ever read, and its records are processed again by their partitions' owners.

    Not a processing failure: the batch is neither retried nor dead-lettered.
    """


def _commit_error_is_transient(error: KafkaError) -> bool:
    return error.retriable() or error.code() in _TRANSIENT_CODES


def _txn_error_is_transient(error: KafkaError) -> bool:
    """librdkafka's rule for its transactional calls: retry only what it marks retriable."""
    return error.retriable() and not error.txn_requires_abort()


def _retrying(
    step: Callable[[], None], what: str, *, transient: Callable[[KafkaError], bool]
) -> None:
    """``step()``, asked again on transient errors within the retry budget; a rebalance error
    becomes :class:`CommitAbandoned`; anything else is raised (the batch fails)."""
    deadline = time.monotonic() + _COMMIT_RETRY_BUDGET_S
    for delay_s in _COMMIT_BACKOFF.delays():
        try:
            step()
            return
        except KafkaException as exc:
            error = kafka_error(exc)
            if error is not None and error.code() in _REBALANCE_CODES:
                raise CommitAbandoned(str(error)) from exc
            if error is None or not transient(error) or time.monotonic() + delay_s > deadline:
                raise
            logger.info("%s failed, retrying in %.2f s: %s", what, delay_s, error)
            time.sleep(delay_s)


class CommitProtocol(Protocol):
    """One batch: ``publish`` once → ``commit``; on any error in between, ``abort``. Nothing is
    committed unless ``commit`` returns."""

    def publish(self, messages: Iterable[Outgoing]) -> None:
        """Open the batch (exactly-once: its transaction) and hand ``messages`` to the
        producer; returns before they are acknowledged."""
        ...

    def commit(self, offsets: list[TopicPartition]) -> None:
        """Commit ``offsets`` once every published message is acknowledged. Raises
        :class:`DeliveryError` if one was not, ``KafkaException`` for broker errors (after
        retrying transient ones for up to ``_COMMIT_RETRY_BUDGET_S``). A commit a rebalance
        refuses is deferred (at-least-once) or raises :class:`CommitAbandoned` (exactly-once)."""
        ...

    def commit_deferred(self) -> None:
        """Commit the offsets a rebalance deferred, if the group now allows it."""
        ...

    def on_revoke(self, partitions: list[TopicPartition]) -> None:
        """In the revoke callback, while this member still owns ``partitions``: commit their
        deferred offsets, the last chance before their next owner reads from the committed
        ones."""
        ...

    def on_lost(self, partitions: list[TopicPartition]) -> None:
        """``partitions`` were taken away: their deferred offsets can no longer be committed."""
        ...

    def abort(self) -> None:
        """Give up the batch: exactly-once aborts its transaction; at-least-once lets what
        was produced stand (the batch will be processed again)."""
        ...

    def close(self) -> None:
        """At shutdown: deliver or abort what is in flight."""
        ...


class DeliveryFailures:
    """The producer's delivery callback, for its whole life.

    Reports come for failures only (``delivery.report.only.error``). One callback set when the
    producer is built, rather than one passed with every ``produce``, saves ~0.2 µs a record.
    Every batch flushes before the next begins, so what arrives between :meth:`clear` and the
    batch's flush is that batch's.
    """

    def __init__(self) -> None:
        self.failed: list[KafkaError] = []

    def __call__(self, error: KafkaError | None, _message: Message) -> None:
        if error is not None:
            self.failed.append(error)

    def clear(self) -> None:
        """Forget the failures of the batch before."""
        self.failed = []


def _produce(producer: Producer, messages: Iterable[Outgoing]) -> None:
    produce = producer.produce
    for topic, value, key, headers, partition in messages:
        while True:
            try:
                if partition is not None:  # a changelog record: its input partition's
                    produce(topic, value, key, partition=partition, headers=headers)
                elif headers:
                    produce(topic, value, key, headers=headers)
                else:  # even headers=None costs ~0.3 µs a call
                    produce(topic, value, key)
                break
            except BufferError:  # local queue full: let deliveries drain, then retry
                producer.poll(_QUEUE_FULL_POLL_S)
    producer.poll(0)  # serve the failure reports that are already in


class AtLeastOnce:
    """produce → flush → every delivery report OK → synchronous commit of the offsets, or,
    while a rebalance refuses it, of them and every later batch's at the next chance."""

    def __init__(
        self,
        consumer: Consumer,
        producer: Producer,
        deliveries: DeliveryFailures,
        *,
        flush_timeout_s: float,
    ) -> None:
        """``deliveries`` must be ``producer``'s delivery callback."""
        self._consumer = consumer
        self._producer = producer
        self._flush_timeout_s = flush_timeout_s
        self._deliveries = deliveries
        #: Offsets whose records' outputs are acknowledged, not yet committed: a rebalance
        #: refused their commit. Only partitions this member owns (see on_revoke, on_lost).
        self._deferred: dict[tuple[str, int], int] = {}
        self._refused = False  # since the last commit that went through: log once

    def publish(self, messages: Iterable[Outgoing]) -> None:
        """Every delivery report from here to the flush is this batch's."""
        self._deliveries.clear()
        _produce(self._producer, messages)

    def commit(self, offsets: list[TopicPartition]) -> None:
        """Flush, check the delivery reports, then commit the offsets synchronously."""
        pending = self._producer.flush(self._flush_timeout_s)
        if pending:
            raise DeliveryError(
                f"{pending} outputs not acknowledged within {self._flush_timeout_s} s"
            )
        if self._deliveries.failed:
            first = self._deliveries.failed[0]
            raise DeliveryError(f"{len(self._deliveries.failed)} outputs failed: {first}")
        for tp in offsets:
            self._deferred[(tp.topic, tp.partition)] = tp.offset
        self.commit_deferred()

    def commit_deferred(self) -> None:
        """Commit every deferred offset; while a rebalance refuses, they stay deferred."""
        if not self._deferred:
            return
        offsets = _topic_partitions(self._deferred)
        try:
            self._commit(offsets)
        except CommitAbandoned as refused:
            if not self._refused:
                logger.info(
                    "A rebalance refused the commit of %s (%s): deferred until the group "
                    "allows it, not processed again",
                    _partition_list(offsets),
                    refused,
                )
            self._refused = True
            return
        if self._refused:
            logger.info("Committed the offsets a rebalance deferred: %s", _partition_list(offsets))
        self._refused = False
        self._deferred.clear()  # a synchronous commit serves no rebalance callback meanwhile

    def on_revoke(self, partitions: list[TopicPartition]) -> None:
        """Commit the revoked partitions' deferred offsets before they are handed over."""
        offsets = self._take(partitions)
        if not offsets:
            return
        try:
            self._commit(offsets)
        except (CommitAbandoned, KafkaException) as error:
            logger.warning(
                "Could not commit %s before handing them over (%s): their next owner processes "
                "those records again",
                _partition_list(offsets),
                headline(error),
            )

    def on_lost(self, partitions: list[TopicPartition]) -> None:
        """Drop the lost partitions' deferred offsets: their next owner repeats the records."""
        offsets = self._take(partitions)
        if offsets:
            logger.warning(
                "Partitions lost with offsets a rebalance deferred: %s; their next owner "
                "processes those records again",
                _partition_list(offsets),
            )

    def _take(self, partitions: list[TopicPartition]) -> list[TopicPartition]:
        """The deferred offsets of ``partitions``, no longer deferred."""
        taken = {
            key: self._deferred.pop(key)
            for key in [(tp.topic, tp.partition) for tp in partitions]
            if key in self._deferred
        }
        return _topic_partitions(taken)

    def _commit(self, offsets: list[TopicPartition]) -> None:
        _retrying(
            lambda: self._consumer.commit(offsets=offsets, asynchronous=False),
            "Offset commit",
            transient=_commit_error_is_transient,
        )

    def abort(self) -> None:
        """Outputs already produced stay: at-least-once, the batch is processed again."""
        self._producer.flush(self._flush_timeout_s)

    def close(self) -> None:
        """Deliver what is in flight."""
        self._producer.flush(self._flush_timeout_s)


class ExactlyOnce:
    """One transaction per batch holding its outputs and its offsets."""

    def __init__(self, consumer: Consumer, producer: Producer, *, timeout_s: float) -> None:
        self._consumer = consumer
        self._producer = producer
        self._timeout_s = timeout_s
        self._open = False
        producer.init_transactions(timeout_s)  # fences an older instance with the same id

    def publish(self, messages: Iterable[Outgoing]) -> None:
        """Begin the batch's transaction and produce into it (commit_transaction fails on any
        failed output, so no delivery callback is needed)."""
        self._producer.begin_transaction()
        self._open = True
        _produce(self._producer, messages)

    def commit(self, offsets: list[TopicPartition]) -> None:
        """Errors that librdkafka marks retriable are retried in place, as its transactional
        API asks; one that needs an abort (or is fatal) fails the batch."""
        if offsets:
            _retrying(
                lambda: self._producer.send_offsets_to_transaction(
                    offsets, self._consumer.consumer_group_metadata(), self._timeout_s
                ),
                "Sending offsets to the transaction",
                transient=_txn_error_is_transient,
            )
        # Flushes the outputs; fails on any output that failed.
        _retrying(
            lambda: self._producer.commit_transaction(self._timeout_s),
            "Commit",
            transient=_txn_error_is_transient,
        )
        self._open = False

    def commit_deferred(self) -> None:
        """Nothing is deferred: a refused transaction is aborted, never kept."""

    def on_revoke(self, partitions: list[TopicPartition]) -> None:
        """Every committed transaction holds its offsets: nothing is left to commit."""

    def on_lost(self, partitions: list[TopicPartition]) -> None:
        """Nothing is deferred."""

    def abort(self) -> None:
        """Abort the batch's transaction, if one is open."""
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


def _topic_partitions(offsets: dict[tuple[str, int], int]) -> list[TopicPartition]:
    return [TopicPartition(topic, part, offset) for (topic, part), offset in offsets.items()]


def _partition_list(offsets: list[TopicPartition]) -> str:
    return ", ".join(f"{tp.topic}[{tp.partition}]@{tp.offset}" for tp in offsets)
