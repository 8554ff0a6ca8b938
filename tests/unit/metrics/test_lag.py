"""Consumer lag from fake clients: the service's lag gauges (``LagRefresher``) and ``kedro stream
lag``'s rows (``group_lag``). Lag is high watermark minus committed offset; a partition with no
commit counts everything still retained."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from confluent_kafka import OFFSET_INVALID, KafkaError, KafkaException, TopicPartition

from kedro_stream.config import KafkaConfig
from kedro_stream.kafka.errors import KafkaUnreachable
from kedro_stream.metrics import lag
from kedro_stream.metrics.lag import LagRefresher, PartitionLag, UnknownTopic, group_lag
from kedro_stream.metrics.registry import StreamMetrics

KAFKA = KafkaConfig()


@dataclass
class OffsetsReader:
    """Answers committed offsets (``OFFSET_INVALID`` where none) and watermarks; records what it
    was asked. ``fail_committed`` is raised by the next ``committed``, once."""

    marks: dict[tuple[str, int], tuple[int, int]]
    offsets: dict[tuple[str, int], int] = field(default_factory=dict)
    fail_committed: Exception | None = None
    asked: list[list[tuple[str, int]]] = field(default_factory=list)
    refreshed: threading.Event = field(default_factory=threading.Event)
    polls: int = 0
    closed: bool = False

    def committed(self, partitions: list[TopicPartition], timeout: float) -> list[TopicPartition]:
        if self.fail_committed is not None:
            error, self.fail_committed = self.fail_committed, None
            raise error
        self.asked.append([(tp.topic, tp.partition) for tp in partitions])
        self.refreshed.set()
        return [
            TopicPartition(
                tp.topic, tp.partition, self.offsets.get((tp.topic, tp.partition), OFFSET_INVALID)
            )
            for tp in partitions
        ]

    def get_watermark_offsets(self, tp: TopicPartition, timeout: float) -> tuple[int, int]:
        return self.marks[(tp.topic, tp.partition)]

    def list_topics(self, topic: str | None = None, *, timeout: float) -> SimpleNamespace:
        """Every topic of the cluster (the ones ``marks`` has), and an internal one."""
        assert topic is None, "asking for a topic by name may create it"
        topics = {t: SimpleNamespace(partitions={}, error=None) for t, _ in self.marks}
        for t, p in self.marks:
            topics[t].partitions[p] = object()
        topics["__consumer_offsets"] = SimpleNamespace(partitions={0: object()}, error=None)
        return SimpleNamespace(topics=topics)

    def poll(self, timeout: float) -> None:
        self.polls += 1

    def close(self) -> None:
        self.closed = True


@dataclass
class OwnedPartitions:
    """The loop's assignment, changed by the test between refreshes."""

    owned: set[tuple[str, int]]

    def __call__(self) -> set[tuple[str, int]]:
        return set(self.owned)


def refresher(
    monkeypatch: pytest.MonkeyPatch,
    reader: OffsetsReader,
    owned: OwnedPartitions,
    config: dict[str, Any] | None = None,
) -> tuple[LagRefresher, StreamMetrics, list[dict[str, Any]]]:
    """A refresher whose client is ``reader``; also the configs its client was built with."""
    built: list[dict[str, Any]] = []

    def consumer(config: dict[str, Any]) -> OffsetsReader:
        built.append(config)
        return reader

    monkeypatch.setattr(lag, "Consumer", consumer)
    metrics = StreamMetrics(group="g", namespace="ns", guarantee="at-least-once")
    config = config or {"bootstrap.servers": "localhost:9092", "group.id": "g"}
    return LagRefresher(config, metrics, owned, interval_s=0.001), metrics, built


def gauges(metrics: StreamMetrics, topic: str, partition: int) -> dict[str, float | None]:
    labels = {"group": "g", "topic": topic, "partition": str(partition)}
    return {
        name: metrics.registry.get_sample_value(f"kedro_stream_{name}", labels)
        for name in ("consumer_lag", "committed_offset", "high_watermark")
    }


def test_lag_is_the_high_watermark_minus_the_committed_offset(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reader = OffsetsReader(marks={("in", 0): (10, 100)}, offsets={("in", 0): 40})
    service, metrics, _ = refresher(monkeypatch, reader, OwnedPartitions({("in", 0)}))

    service.refresh()

    assert gauges(metrics, "in", 0) == {
        "consumer_lag": 60,
        "committed_offset": 40,
        "high_watermark": 100,
    }


def test_a_partition_without_a_commit_counts_everything_retained(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reader = OffsetsReader(marks={("in", 0): (10, 100)})
    service, metrics, _ = refresher(monkeypatch, reader, OwnedPartitions({("in", 0)}))

    service.refresh()

    assert gauges(metrics, "in", 0) == {
        "consumer_lag": 90,
        "committed_offset": 0,
        "high_watermark": 100,
    }


def test_the_gauges_of_partitions_no_longer_owned_are_dropped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reader = OffsetsReader(marks={("in", 0): (0, 5), ("in", 1): (0, 8)})
    owned = OwnedPartitions({("in", 0), ("in", 1)})
    service, metrics, _ = refresher(monkeypatch, reader, owned)
    service.refresh()

    owned.owned = {("in", 1)}
    service.refresh()

    assert set(gauges(metrics, "in", 0).values()) == {None}
    assert gauges(metrics, "in", 1)["consumer_lag"] == 8


def test_losing_every_partition_drops_every_gauge_and_asks_the_broker_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reader = OffsetsReader(marks={("in", 0): (0, 5)})
    owned = OwnedPartitions({("in", 0)})
    service, metrics, _ = refresher(monkeypatch, reader, owned)
    service.refresh()

    owned.owned = set()
    service.refresh()

    assert set(gauges(metrics, "in", 0).values()) == {None}
    assert len(reader.asked) == 1


def test_the_reader_never_commits_and_drops_what_only_a_member_uses(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = {
        "bootstrap.servers": "b:9092",
        "group.id": "g",
        "partition.assignment.strategy": "cooperative-sticky",
        "on_commit": print,
    }
    reader = OffsetsReader(marks={})
    _, _, built = refresher(monkeypatch, reader, OwnedPartitions(set()), config)

    assert built == [{"bootstrap.servers": "b:9092", "group.id": "g", "enable.auto.commit": False}]


def test_a_failed_refresh_does_not_end_lag_reporting(monkeypatch: pytest.MonkeyPatch) -> None:
    """The refresher's thread logs a broker error and tries again at the next interval."""
    reader = OffsetsReader(
        marks={("in", 0): (0, 5)},
        fail_committed=KafkaException(KafkaError(KafkaError._TIMED_OUT)),
    )
    service, metrics, _ = refresher(monkeypatch, reader, OwnedPartitions({("in", 0)}))

    service.start()
    try:
        assert reader.refreshed.wait(timeout=5)
    finally:
        service.stop()

    assert gauges(metrics, "in", 0)["consumer_lag"] == 5
    assert reader.polls >= 1
    assert reader.closed


# --- kedro stream lag -------------------------------------------------------------------------


@dataclass
class Done:
    value: Any

    def result(self, timeout: float | None = None) -> Any:
        return self.value


@dataclass
class GroupOffsetsAdmin:
    """Lists the committed offsets of one group; records the groups asked for."""

    committed: list[TopicPartition]
    asked: list[str] = field(default_factory=list)

    def list_consumer_group_offsets(self, request: list[Any]) -> dict[str, Done]:
        [wanted] = request
        self.asked.append(wanted.group_id)
        return {wanted.group_id: Done(SimpleNamespace(topic_partitions=self.committed))}


def no_admin(kafka: KafkaConfig) -> None:
    raise AssertionError("the admin client is not needed when the topics are given")


def use_clients(
    monkeypatch: pytest.MonkeyPatch,
    reader: OffsetsReader,
    admin: Any = no_admin,
    reachable: Any = lambda client, kafka: None,
) -> None:
    monkeypatch.setattr(lag, "offsets_consumer", lambda kafka, group: reader)
    monkeypatch.setattr(lag, "ensure_reachable", reachable)
    monkeypatch.setattr(lag, "command_admin", admin)


def committed(rows: Iterable[tuple[str, int, int]]) -> list[TopicPartition]:
    return [TopicPartition(topic, partition, offset) for topic, partition, offset in rows]


def test_with_topics_it_reads_every_partition_of_those_topics(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reader = OffsetsReader(
        marks={("a", 0): (0, 10), ("a", 1): (3, 9), ("b", 0): (0, 4), ("c", 0): (0, 1)},
        offsets={("a", 0): 7},
    )
    use_clients(monkeypatch, reader)

    rows = group_lag(KAFKA, "g", ["a", "b"])

    assert rows == [
        PartitionLag("a", 0, committed=7, high=10, lag=3),
        PartitionLag("a", 1, committed=OFFSET_INVALID, high=9, lag=6),
        PartitionLag("b", 0, committed=OFFSET_INVALID, high=4, lag=4),
    ]
    assert sorted(reader.asked[0]) == [("a", 0), ("a", 1), ("b", 0)]


def test_without_topics_it_lists_the_groups_committed_offsets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reader = OffsetsReader(marks={("a", 0): (0, 10), ("b", 2): (5, 50), ("c", 0): (0, 1)})
    admin = GroupOffsetsAdmin(committed([("b", 2, 20), ("a", 0, 10)]))
    use_clients(monkeypatch, reader, admin=lambda kafka: admin)

    rows = group_lag(KAFKA, "g")

    assert rows == [
        PartitionLag("a", 0, committed=10, high=10, lag=0),
        PartitionLag("b", 2, committed=20, high=50, lag=30),
    ]
    assert admin.asked == ["g"]
    assert reader.asked == []


def test_without_topics_and_no_listing_the_groups_commits_are_found_partition_by_partition(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The development broker lists a group's offsets only for the partitions named: its
    listing of the whole group is empty, whatever the group committed."""
    reader = OffsetsReader(
        marks={("a", 0): (0, 10), ("a", 1): (0, 10), ("b", 0): (5, 50)},
        offsets={("a", 1): 4, ("b", 0): 50},
    )
    use_clients(monkeypatch, reader, admin=lambda kafka: GroupOffsetsAdmin([]))

    rows = group_lag(KAFKA, "g")

    assert rows == [
        PartitionLag("a", 1, committed=4, high=10, lag=6),
        PartitionLag("b", 0, committed=50, high=50, lag=0),
    ]
    assert sorted(reader.asked[0]) == [("a", 0), ("a", 1), ("b", 0)]  # not __consumer_offsets


def test_a_group_with_no_commit_anywhere_has_no_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    reader = OffsetsReader(marks={("a", 0): (0, 10)})
    use_clients(monkeypatch, reader, admin=lambda kafka: GroupOffsetsAdmin([]))

    assert group_lag(KAFKA, "g") == []


def test_a_topic_the_cluster_lacks_is_named_with_the_one_meant(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reader = OffsetsReader(marks={("clicks", 0): (0, 10), ("payments", 0): (0, 1)})
    use_clients(monkeypatch, reader)

    with pytest.raises(UnknownTopic) as raised:
        group_lag(KAFKA, "g", ["clicks", "clikcs"])

    assert str(raised.value) == (
        "topic 'clikcs' does not exist (did you mean 'clicks'?); topics: 'clicks', 'payments'"
    )
    assert reader.asked == []  # no offsets asked for
    assert reader.closed


def test_a_cluster_of_many_topics_is_not_listed_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    reader = OffsetsReader(marks={(f"t{i:02}", 0): (0, 1) for i in range(25)})
    use_clients(monkeypatch, reader)

    with pytest.raises(UnknownTopic, match=r"topics: 't00', .* 't19' and 5 more$"):
        group_lag(KAFKA, "g", ["zzz"])


def test_the_rows_are_sorted_by_topic_and_partition(monkeypatch: pytest.MonkeyPatch) -> None:
    marks = {("b", 1): (0, 1), ("a", 10): (0, 1), ("b", 0): (0, 1), ("a", 2): (0, 1)}
    reader = OffsetsReader(marks=marks)
    admin = GroupOffsetsAdmin(committed((t, p, 0) for t, p in marks))
    use_clients(monkeypatch, reader, admin=lambda kafka: admin)

    rows = group_lag(KAFKA, "g")

    assert [(row.topic, row.partition) for row in rows] == [("a", 2), ("a", 10), ("b", 0), ("b", 1)]


def test_the_reader_is_closed_when_the_cluster_does_not_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reader = OffsetsReader(marks={})

    def unreachable(client: Any, kafka: KafkaConfig) -> None:
        raise KafkaUnreachable("cannot reach Kafka")

    use_clients(monkeypatch, reader, reachable=unreachable)

    with pytest.raises(KafkaUnreachable):
        group_lag(KAFKA, "g", ["a"])
    assert reader.closed


def test_the_reader_is_closed_when_a_call_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    reader = OffsetsReader(
        marks={("a", 0): (0, 1)},
        fail_committed=KafkaException(KafkaError(KafkaError.GROUP_AUTHORIZATION_FAILED)),
    )
    use_clients(monkeypatch, reader)

    with pytest.raises(KafkaException):
        group_lag(KAFKA, "g", ["a"])
    assert reader.closed
