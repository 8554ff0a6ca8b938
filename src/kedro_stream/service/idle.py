"""When an idle stream stops (``--idle-timeout-s``), and why it says it stopped.

Idle time counts from the later of the first assignment and the last record, or from the start
while nothing is assigned: a late group join or a long restore of state is not idleness. A
stream with nothing assigned asks whether the cluster answers at all: nothing to read is a
normal end, a cluster never reached is an error.
"""

from __future__ import annotations

import logging

from confluent_kafka import Consumer, KafkaException

from kedro_stream.config import KafkaConfig, StreamConfig
from kedro_stream.kafka.client_log import CLIENT_LOG
from kedro_stream.service.startup import REACH_TIMEOUT_S, never_reached

logger = logging.getLogger(__name__)


class IdleWatch:
    """Follows the loop's turns; says when the stream has been idle too long."""

    def __init__(self, timeout_s: float | None, *, since: float) -> None:
        self._timeout_s = timeout_s or 0.0  # 0: never idle
        self._since = since
        self._owned: set[tuple[str, int]] = set()
        self.assigned = False  # ever, since the start

    def turned(self, now: float, owned: set[tuple[str, int]], *, records: bool) -> bool:
        """One turn of the loop at ``now``, owning ``owned``, with or without ``records``:
        whether the stream has now been idle too long."""
        if owned != self._owned:  # the group answered: partitions came or went
            self._owned = set(owned)
            if owned:
                CLIENT_LOG.reached()
                if not self.assigned:
                    self.assigned, self._since = True, now
        if records:
            CLIENT_LOG.reached()
            self._since = now
            return False
        return self._timeout_s > 0 and now - self._since > self._timeout_s

    def stop(self, consumer: Consumer, stream: StreamConfig, kafka: KafkaConfig) -> None:
        """Say why the stream stops, or raise :class:`KafkaUnreachable` if it never heard from
        the cluster."""
        idle_s = self._timeout_s
        if self.assigned:
            logger.info("No record for %.1f s: stopping", idle_s)
            return
        try:  # nothing assigned: does the cluster answer at all?
            consumer.list_topics(timeout=REACH_TIMEOUT_S)
        except KafkaException as exc:
            raise never_reached(kafka, idle_s, "--idle-timeout-s, with nothing assigned") from exc
        CLIENT_LOG.reached()
        logger.warning(
            "No partition of %s was assigned in %.1f s (does the group have more members "
            "than partitions?): stopping",
            ", ".join(stream.input.topics),
            idle_s,
        )
