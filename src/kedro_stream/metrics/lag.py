"""Consumer lag per assigned partition, refreshed off the loop's thread, and per partition of a
group for ``kedro stream lag``.

A separate client with the service's ``group.id`` that never subscribes reads the committed
offsets and high watermarks; the loop only hands over its current assignment. Lag is
high watermark minus committed offset (kafka_exporter's definition); a partition with no
commit yet counts everything still retained.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from confluent_kafka import (
    Consumer,
    ConsumerGroupTopicPartitions,
    KafkaException,
    TopicPartition,
)

from kedro_stream.config import KafkaConfig
from kedro_stream.errors import KedroStreamError, choices, did_you_mean
from kedro_stream.kafka.command_clients import command_admin, ensure_reachable, offsets_consumer
from kedro_stream.metrics.registry import StreamMetrics

logger = logging.getLogger(__name__)
#: How long ``kedro stream lag`` waits for each answer of the cluster.
GROUP_LAG_TIMEOUT_S = 10.0
#: The most topics an error names; a cluster may have thousands.
_TOPICS_NAMED = 20


class UnknownTopic(KedroStreamError):
    """A topic asked for is not on the cluster: a group cannot have committed offsets there."""


@dataclass(frozen=True)
class PartitionLag:
    """One row of ``kedro stream lag``."""

    topic: str
    partition: int
    committed: int
    high: int
    lag: int


def _lag(committed: int, low: int, high: int) -> int:
    return max(high - (committed if committed >= 0 else low), 0)


def group_lag(
    kafka: KafkaConfig,
    group: str,
    topics: Iterable[str] = (),
    *,
    timeout_s: float = GROUP_LAG_TIMEOUT_S,
) -> list[PartitionLag]:
    """Lag of every partition of ``topics`` for ``group`` (:class:`UnknownTopic` for one the
    cluster does not have); without topics, of every partition the group has committed.
    :class:`~kedro_stream.kafka.errors.KafkaUnreachable` when the cluster does not answer."""
    reader = offsets_consumer(kafka, group)
    try:
        ensure_reachable(reader, kafka)
        if topics:
            wanted = _partitions(reader, list(topics), timeout_s)
            listed = reader.committed(wanted, timeout=timeout_s)
        else:
            listed = _group_offsets(kafka, group, timeout_s) or _committed_anywhere(
                reader, timeout_s
            )
        rows = []
        for tp in sorted(listed, key=lambda tp: (tp.topic, tp.partition)):
            low, high = reader.get_watermark_offsets(
                TopicPartition(tp.topic, tp.partition), timeout_s
            )
            rows.append(
                PartitionLag(tp.topic, tp.partition, tp.offset, high, _lag(tp.offset, low, high))
            )
        return rows
    finally:
        reader.close()


def _partitions(reader: Consumer, topics: list[str], timeout_s: float) -> list[TopicPartition]:
    """Every partition of ``topics``, from one metadata request for the whole cluster: a typo
    must not create a topic, and asking for one by name may (a client with
    ``allow.auto.create.topics``)."""
    existing = _topics(reader, timeout_s)
    for topic in topics:
        if topic not in existing:
            named = sorted(existing)
            more = len(named) - _TOPICS_NAMED
            raise UnknownTopic(
                f"topic {topic!r} does not exist{did_you_mean(topic, named)}; topics: "
                f"{choices(named[:_TOPICS_NAMED])}" + (f" and {more} more" if more > 0 else "")
            )
    return [TopicPartition(topic, p) for topic in topics for p in existing[topic]]


def _topics(reader: Consumer, timeout_s: float) -> dict[str, list[int]]:
    """The cluster's topics and their partitions, less its internal ones (``__*``)."""
    metadata = reader.list_topics(timeout=timeout_s)
    return {
        name: sorted(topic.partitions)
        for name, topic in metadata.topics.items()
        if not name.startswith("__") and topic.error is None
    }


def _group_offsets(kafka: KafkaConfig, group: str, timeout_s: float) -> list[TopicPartition]:
    """What the group coordinator lists as the group's committed offsets."""
    admin = command_admin(kafka)
    request = [ConsumerGroupTopicPartitions(group)]
    listed = admin.list_consumer_group_offsets(request)[group].result(timeout=timeout_s)
    return list(listed.topic_partitions or [])


def _committed_anywhere(reader: Consumer, timeout_s: float) -> list[TopicPartition]:
    """The group's commits found by asking for every partition of the cluster: the
    development broker lists a group's offsets only for the partitions named, so the listing
    above comes back empty there."""
    everything = [TopicPartition(t, p) for t, ps in _topics(reader, timeout_s).items() for p in ps]
    if not everything:
        return []
    return [tp for tp in reader.committed(everything, timeout=timeout_s) if tp.offset >= 0]


class LagRefresher:
    """Keeps the lag gauges of this member's partitions current, from a thread of its own: a
    broker that answers slowly must not slow the loop."""

    def __init__(
        self,
        config: dict[str, Any],
        metrics: StreamMetrics,
        assignment: Callable[[], set[tuple[str, int]]],
        *,
        interval_s: float,
        timeout_s: float = 5.0,  # per broker request; the refresh after it is interval_s away
    ) -> None:
        # The service's consumer config (its logger, and under KIP-848 without the classic-only
        # settings), less what only a group member uses.
        reader = {k: v for k, v in config.items() if not k.startswith(("partition.", "on_"))}
        self._consumer = Consumer({**reader, "enable.auto.commit": False})
        self._metrics = metrics
        self._assignment = assignment
        self._interval_s = interval_s
        self._timeout_s = timeout_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kedro-stream-lag", daemon=True)
        self._known: set[tuple[str, int]] = set()

    def start(self) -> None:
        """Refresh every ``interval_s`` until :meth:`stop`."""
        self._thread.start()

    def refresh(self) -> None:
        """Read the committed offsets and watermarks of the owned partitions once, and drop the
        gauges of partitions no longer owned."""
        owned = self._assignment()
        self._metrics.forget_partitions(self._known - owned)
        self._known = owned
        if not owned:
            return
        tps = [TopicPartition(t, p) for t, p in sorted(owned)]
        committed = {
            (tp.topic, tp.partition): tp.offset
            for tp in self._consumer.committed(tps, timeout=self._timeout_s)
        }
        m, group = self._metrics, self._metrics.group
        for tp in tps:
            low, high = self._consumer.get_watermark_offsets(tp, timeout=self._timeout_s)
            offset = committed.get((tp.topic, tp.partition), -1)
            labels = (group, tp.topic, str(tp.partition))
            m.high_watermark.labels(*labels).set(high)
            m.committed_offset.labels(*labels).set(max(offset, 0))
            m.lag.labels(*labels).set(_lag(offset, low, high))

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.refresh()
            except KafkaException as exc:  # a broker hiccup must not end lag reporting
                logger.warning("Lag refresh failed: %s", exc)
            # Its client's log lines (the config's logger) are delivered only by a poll.
            self._consumer.poll(0)
            self._stop.wait(self._interval_s)

    def stop(self) -> None:
        """Stop refreshing and close the client."""
        self._stop.set()
        if self._thread.is_alive():
            # a refresh in flight makes up to three requests of timeout_s each
            self._thread.join(timeout=self._timeout_s * 3)
        self._consumer.close()
