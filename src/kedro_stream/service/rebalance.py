"""This member's partitions, as the group's rebalance callbacks report them, and what a
rebalance does to a batch in flight.

The callbacks run inside ``poll``/``consume`` on the loop's thread: while a batch is collected,
and inside the keep-alive polls of a long run, so a partition can be taken away from a batch in
flight. Such a batch publishes nothing (:class:`Overtaken`): the partitions' new owner
processes their records, and the records of partitions this member kept are read again.
A planned rebalance thus repeats no output: what was published before it is committed, at the
latest in the revoke callback (``commit.py``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from confluent_kafka import Consumer, TopicPartition

from kedro_stream.errors import KedroStreamError, headline
from kedro_stream.metrics import StreamMetrics
from kedro_stream.service.batch import Batch
from kedro_stream.service.commit import CommitProtocol
from kedro_stream.state.keeper import State

logger = logging.getLogger(__name__)

RebalanceCallback = Callable[[Consumer, list[TopicPartition]], None]


class Overtaken(KedroStreamError):
    """A rebalance took some of the batch's partitions since it was collected: their records
    belong to the new owner, so nothing of the batch is published or committed."""


class Assignment:
    """The partitions this member owns, and those revoked since the current batch began to be
    collected."""

    def __init__(self, metrics: StreamMetrics, group: str) -> None:
        self.owned: set[tuple[str, int]] = set()  # read by the lag refresher and the probes
        self._revoked: set[tuple[str, int]] = set()  # since the current batch began
        self._metrics = metrics
        self._group = group

    def on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Partitions given to this member."""
        self.owned.update((tp.topic, tp.partition) for tp in partitions)
        self._changed()
        logger.info("Assigned %s", _partition_list(partitions))

    def on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Partitions taken away (handed back, or lost)."""
        lost = {(tp.topic, tp.partition) for tp in partitions}
        self._revoked.update(lost)
        self.owned.difference_update(lost)
        self._changed()
        logger.info("Revoked %s", _partition_list(partitions))

    def batch_started(self) -> None:
        """A batch begins to be collected: only what is revoked from now on overtakes it."""
        self._revoked.clear()

    def check_owned(self, batch: Batch) -> None:
        """Raise :class:`Overtaken` if one of the batch's partitions was revoked since it began
        (its store, in a stateful stream, is already released)."""
        if self._revoked:  # the rule: nothing to look at per record
            taken = {(m.topic(), m.partition()) for m in batch.messages} & self._revoked
            if taken:
                listed = ", ".join(f"{topic}[{partition}]" for topic, partition in sorted(taken))
                raise Overtaken(f"{listed} revoked while the batch was in flight")

    def still_owned(self, batch: Batch) -> list[TopicPartition]:
        """The batch's next offsets, to publish and commit it, after :meth:`check_owned` (no
        poll may come between this and the commit)."""
        self.check_owned(batch)
        return batch.next_offsets()

    def _changed(self) -> None:
        self._metrics.rebalances.labels(self._group).inc()
        self._metrics.assigned.labels(self._group).set(len(self.owned))


def rebalance_callbacks(
    assignment: Assignment, state: State, protocol: CommitProtocol
) -> dict[str, RebalanceCallback]:
    """The consumer's callbacks. On revocation the offsets a rebalance deferred are committed
    first, while this member still owns the partitions; on loss they are dropped. A stateful
    stream's stores are restored on assignment, before any of their partitions' records is
    handed out, and released on revocation (checkpointed) or on loss (not: a new owner may
    already be writing their changelogs)."""

    def on_assign(consumer: Consumer, partitions: list[TopicPartition]) -> None:
        assignment.on_assign(consumer, partitions)
        state.on_assign(consumer, partitions)

    def on_revoke(consumer: Consumer, partitions: list[TopicPartition]) -> None:
        protocol.on_revoke(partitions)
        state.on_revoke(partitions)
        assignment.on_revoke(consumer, partitions)

    def on_lost(consumer: Consumer, partitions: list[TopicPartition]) -> None:
        protocol.on_lost(partitions)
        state.on_lost(partitions)
        assignment.on_revoke(consumer, partitions)

    return {"on_assign": on_assign, "on_revoke": on_revoke, "on_lost": on_lost}


def rewind(batch: Batch, consumer: Consumer, error: Exception) -> None:
    """After a rebalance overtook the batch (nothing of it published, or its transaction
    aborted), have it processed again by its partitions' owners: partitions this member still
    owns are rewound to the batch start (its offsets were never committed, and if no later
    record arrived nothing else would ever commit them); revoked ones restart from their
    committed offset with their new owner."""
    logger.info(
        "A rebalance overtook a batch of %d records (%s): nothing of it was published; its "
        "records are processed again by their partitions' owners",
        len(batch),
        headline(error),
    )
    owned = {(tp.topic, tp.partition) for tp in consumer.assignment()}
    for tp in batch.first_offsets():
        if (tp.topic, tp.partition) in owned:
            consumer.seek(tp)


def _partition_list(partitions: list[TopicPartition]) -> str:
    return ", ".join(f"{tp.topic}[{tp.partition}]" for tp in partitions) or "nothing"
