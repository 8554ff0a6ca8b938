"""A stateful stream's loop against fake clients and real local stores: state is written to a
store only once its batch is committed, and only for the partitions the batch commits."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import pandas as pd
import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from kedro_stream.config import KafkaConfig, Project
from kedro_stream.service import parts, startup
from kedro_stream.service.loop import StreamService
from kedro_stream.state.changelog import AS_OF
from kedro_stream.state.layout import StoreLayout
from kedro_stream.state.store import PartitionStore
from tests.fake_clients import FakeConsumer, FakeMessage, FakeProducer, stream_config

CHANGELOG = "g-counts-changelog"


def keyed(partition: int, offset: int, key: str) -> FakeMessage:
    return FakeMessage("in", partition, offset, orjson.dumps({"k": key}), key.encode())


class CountingSession:
    """Namespace ``ns``: input ``batch``, state ``counts`` (its updates ``counts_updates``), output
    ``out``; each record adds one to its key's count. ``during_run`` is called in every run."""

    def __init__(self, during_run: Any = lambda: None) -> None:
        self.during_run = during_run

    def compiled(self, namespace: str | None) -> SimpleNamespace:
        return SimpleNamespace(
            inputs={"batch": "ns.batch", "counts": "ns.counts"},
            outputs={"ns.out": "out", "ns.counts_updates": "counts_updates"},
            states={"counts": "counts_updates"},
            report=(),
        )

    def run(self, namespace: str | None, inputs: dict[str, Any]) -> dict[str, Any]:
        self.during_run()
        known = {row["k"]: row["n"] for row in inputs["counts"].to_dict(orient="records")}
        for key in inputs["batch"]["k"]:
            known[key] = known.get(key, 0) + 1
        touched = set(inputs["batch"]["k"])
        updates = pd.DataFrame([{"k": k, "n": n} for k, n in known.items() if k in touched])
        return {"out": inputs["batch"], "counts_updates": updates}


@dataclass
class StatefulConsumer(FakeConsumer):
    """Also answers what a stateful start and an assignment ask: metadata and committed
    offsets (none at first, then what was committed)."""

    committed_at: dict[tuple[str, int], int] = field(default_factory=dict)

    def list_topics(self, timeout: float) -> SimpleNamespace:
        return SimpleNamespace(cluster_id="a-cluster", topics={})

    def committed(self, partitions: list[TopicPartition], timeout: float) -> list[TopicPartition]:
        return [
            TopicPartition(
                tp.topic, tp.partition, self.committed_at.get((tp.topic, tp.partition), -1001)
            )
            for tp in partitions
        ]

    def commit(self, *, offsets: list[TopicPartition], asynchronous: bool) -> None:
        super().commit(offsets=offsets, asynchronous=asynchronous)
        self.committed_at.update({(tp.topic, tp.partition): tp.offset for tp in offsets})


class EmptyChangelog:
    """A restore consumer over changelog partitions that hold nothing yet."""

    def __init__(self) -> None:
        self._assigned: list[TopicPartition] = []

    def assign(self, partitions: list[TopicPartition]) -> None:
        self._assigned = list(partitions)

    def consume(self, num_messages: int, timeout: float) -> list[Any]:
        ends, self._assigned = self._assigned, []
        return [_end_of(tp) for tp in ends]

    def unassign(self) -> None:
        self._assigned = []

    def get_watermark_offsets(self, tp: TopicPartition, timeout: float) -> tuple[int, int]:
        return 0, 0

    def close(self) -> None:
        pass


def _end_of(tp: TopicPartition) -> SimpleNamespace:
    end = KafkaError(KafkaError._PARTITION_EOF)
    return SimpleNamespace(error=lambda: end, partition=lambda: tp.partition)


class Topics:
    """An admin client that finds the input topic and its changelog, with two partitions each."""

    def list_topics(self, timeout: float, topic: str | None = None) -> SimpleNamespace:
        partitions = SimpleNamespace(partitions={0: None, 1: None})
        return SimpleNamespace(topics={"in": partitions, CHANGELOG: partitions})


@pytest.fixture(autouse=True)
def no_cluster(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(startup, "make_admin", lambda kafka: Topics())
    monkeypatch.setattr(parts, "make_restore_consumer", lambda kafka, stream: EmptyChangelog())
    yield


def run(
    session: CountingSession, consumer: StatefulConsumer, producer: FakeProducer, state_dir: Path
) -> StreamService:
    service = StreamService(
        session,  # type: ignore[arg-type]
        stream_config(
            input={"topics": ["in"], "dataset": "batch", "format": "json"},
            state={"counts": {"input": "counts", "updates": "counts_updates", "key": "k"}},
            state_dir=str(state_dir),
            batch={"max_wait_ms": 1},
        ),
        KafkaConfig(),
        project=Project(state_dir),
        consumer_factory=lambda: consumer,  # type: ignore[arg-type,return-value]
        producer_factory=lambda _deliveries: producer,  # type: ignore[arg-type,return-value]
        idle_timeout_s=0.05,
    )
    service.run()
    return service


def stored(state_dir: Path, partition: int, key: str) -> dict[str, Any] | None:
    layout = StoreLayout(state_dir / "g", "in")
    store = PartitionStore(layout.store("counts", partition))
    try:
        found = store.get([key]).get(key)
    finally:
        store.close()
    return None if found is None or found[1] is None else orjson.loads(found[1])


def changelog(producer: FakeProducer) -> list[tuple[bytes | None, dict[str, Any], int]]:
    """(key, row, as_of) of each changelog record published."""
    return [
        (key, orjson.loads(value or b"null"), int(headers[AS_OF]))
        for (topic, value, key), headers in zip(producer.produced, producer.headers, strict=True)
        if topic == CHANGELOG
    ]


def test_a_batch_whose_commit_a_rebalance_deferred_counts_once(tmp_path: Path) -> None:
    """Its outputs and changelog record are acknowledged: the batch is not run again, its
    updates reach the store, and its offsets are committed once the group allows it."""
    batch = [keyed(0, 0, "a"), keyed(0, 1, "a")]
    refused = KafkaException(KafkaError(KafkaError.REBALANCE_IN_PROGRESS, "rebalancing"))
    consumer = StatefulConsumer([batch], commit_errors=[refused])
    producer = FakeProducer()

    run(CountingSession(), consumer, producer, tmp_path)

    assert consumer.seeks == []
    assert consumer.commits == [[("in", 0, 2)]]
    assert stored(tmp_path, 0, "a") == {"k": "a", "n": 2}
    assert [(key, row["n"], as_of) for key, row, as_of in changelog(producer)] == [(b"a", 2, 2)]


def test_a_batch_overtaken_during_its_run_writes_no_state(tmp_path: Path) -> None:
    """The revoked partition's new owner processes its records and writes their state; the
    kept partition's records are read again, and counted once."""
    batch = [keyed(0, 0, "a"), keyed(1, 0, "b")]
    consumer, producer = StatefulConsumer([batch, [keyed(0, 0, "a")]]), FakeProducer()
    revoked: list[int] = []

    def revoke_once() -> None:
        if not revoked:
            revoked.append(1)
            consumer.revoke("in", 1)

    run(CountingSession(revoke_once), consumer, producer, tmp_path)

    assert consumer.seeks == [("in", 0, 0)]
    assert consumer.commits == [[("in", 0, 1)]]
    assert [key for key, _, _ in changelog(producer)] == [b"a"]
    assert stored(tmp_path, 0, "a") == {"k": "a", "n": 1}
    assert stored(tmp_path, 1, "b") is None


def test_a_batch_whose_outputs_failed_leaves_the_store_as_it_was(tmp_path: Path) -> None:
    """The batch is run again: its store must still hold the rows from before it, or the
    batch would count twice."""
    batch = [keyed(0, 0, "a"), keyed(0, 1, "a")]
    consumer = StatefulConsumer([batch])
    producer = UnacknowledgedOnce()

    run(CountingSession(), consumer, producer, tmp_path)

    assert consumer.commits == [[("in", 0, 2)]]
    assert stored(tmp_path, 0, "a") == {"k": "a", "n": 2}


class UnacknowledgedOnce(FakeProducer):
    """Its first flush leaves an output unacknowledged: that batch fails at step 7."""

    def __init__(self) -> None:
        super().__init__()
        self._flushes = 0

    def flush(self, timeout: float) -> int:
        self._flushes += 1
        return 1 if self._flushes == 1 else 0


def test_a_batch_overtaken_while_collected_is_not_a_failure(tmp_path: Path) -> None:
    """Its revoked partition's store is already released: reading it would fail the batch,
    retry it and give it up, where the records are simply their new owner's."""
    consumer, producer = StatefulConsumer([[keyed(0, 0, "a"), keyed(1, 0, "b")]]), FakeProducer()
    consumer.revoke_on_consume = ("in", 1)
    service = run(CountingSession(), consumer, producer, tmp_path)

    assert service.metrics.batch_failures.labels("g")._value.get() == 0
    assert consumer.seeks == [("in", 0, 0)]
    assert producer.produced == []
