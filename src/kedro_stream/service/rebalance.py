"""This member's partitions, as the group's rebalance callbacks report them, and what a
rebalance does to a batch in flight.

The callbacks run inside ``poll``/``consume`` on the loop's thread, and also inside the
keep-alive polls of a long run: a partition can be taken away while its batch is running.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from confluent_kafka import Consumer, TopicPartition

from kedro_stream.errors import headline
from kedro_stream.metrics import StreamMetrics
from kedro_stream.service.batch import Batch
from kedro_stream.state.keeper import State

logger = logging.getLogger(__name__)

RebalanceCallback = Callable[[Consumer, list[TopicPartition]], None]


class Assignment:
    """The partitions this member owns, and those revoked since the current batch began."""

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
        """A batch begins: only what is revoked from now on keeps it from committing."""
        self._revoked.clear()

    def committable(self, batch: Batch) -> list[TopicPartition]:
        """The batch's next offsets, for the partitions not revoked while it ran: a new owner
        may already be processing them, and their outputs may not be acknowledged."""
        revoked = self._revoked
        return [tp for tp in batch.next_offsets() if (tp.topic, tp.partition) not in revoked]

    def _changed(self) -> None:
        self._metrics.rebalances.labels(self._group).inc()
        self._metrics.assigned.labels(self._group).set(len(self.owned))


def rebalance_callbacks(assignment: Assignment, state: State) -> dict[str, RebalanceCallback]:
    """The consumer's callbacks: a stateful stream's stores are restored on assignment, before
    any of their partitions' records is handed out, and released on revocation (checkpointed)
    or on loss (not: a new owner may already be writing their changelogs)."""

    def on_assign(consumer: Consumer, partitions: list[TopicPartition]) -> None:
        assignment.on_assign(consumer, partitions)
        state.on_assign(consumer, partitions)

    def on_revoke(consumer: Consumer, partitions: list[TopicPartition]) -> None:
        state.on_revoke(partitions)
        assignment.on_revoke(consumer, partitions)

    def on_lost(consumer: Consumer, partitions: list[TopicPartition]) -> None:
        state.on_lost(partitions)
        assignment.on_revoke(consumer, partitions)

    return {"on_assign": on_assign, "on_revoke": on_revoke, "on_lost": on_lost}


def rewind(batch: Batch, consumer: Consumer, error: Exception) -> None:
    """After a rebalance refused the batch's commit, have it processed again by its partitions'
    owners: partitions this member still owns are rewound to the batch start (its offsets were
    never committed, and if no later record arrived nothing else would ever commit them);
    revoked ones restart from their committed offset with their new owner."""
    logger.warning(
        "A rebalance overtook a batch of %d records before its commit (%s); they will be "
        "processed again",
        len(batch),
        headline(error),
    )
    owned = {(tp.topic, tp.partition) for tp in consumer.assignment()}
    for tp in batch.first_offsets():
        if (tp.topic, tp.partition) in owned:
            consumer.seek(tp)


def _partition_list(partitions: list[TopicPartition]) -> str:
    return ", ".join(f"{tp.topic}[{tp.partition}]" for tp in partitions) or "nothing"
