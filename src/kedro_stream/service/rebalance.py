"""This member's partitions, as the group's rebalance callbacks report them.

The callbacks run inside ``poll``/``consume`` on the loop's thread, and also inside the
keep-alive polls of a long run: a partition can be taken away while its batch is running.
"""

from __future__ import annotations

import logging

from confluent_kafka import Consumer, TopicPartition

from kedro_stream.metrics import StreamMetrics
from kedro_stream.service.batch import Batch

logger = logging.getLogger(__name__)


class Assignment:
    def __init__(self, metrics: StreamMetrics, group: str) -> None:
        self.owned: set[tuple[str, int]] = set()  # read by the lag refresher and the probes
        self._revoked: set[tuple[str, int]] = set()  # since the current batch began
        self._metrics = metrics
        self._group = group

    def on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.owned.update((tp.topic, tp.partition) for tp in partitions)
        self._changed()
        logger.info("Assigned %s", _partition_list(partitions))

    def on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        lost = {(tp.topic, tp.partition) for tp in partitions}
        self._revoked.update(lost)
        self.owned.difference_update(lost)
        self._changed()
        logger.info("Revoked %s", _partition_list(partitions))

    def batch_started(self) -> None:
        self._revoked.clear()

    def committable(self, batch: Batch) -> list[TopicPartition]:
        """The batch's next offsets, for the partitions not revoked while it ran: a new owner
        may already be processing them, and their outputs may not be acknowledged."""
        revoked = self._revoked
        return [
            TopicPartition(topic, partition, offset)
            for (topic, partition), offset in batch.next_offsets().items()
            if (topic, partition) not in revoked
        ]

    def _changed(self) -> None:
        self._metrics.rebalances.labels(self._group).inc()
        self._metrics.assigned.labels(self._group).set(len(self.owned))


def _partition_list(partitions: list[TopicPartition]) -> str:
    return ", ".join(f"{tp.topic}[{tp.partition}]" for tp in partitions) or "nothing"
