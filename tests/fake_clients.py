"""Fake Kafka clients and a fake session, for unit tests of the stream loop's logic.

Kafka behaviour itself is tested against broker processes; these stand in only where a test is
about the loop's own decisions (what it commits, when it dead-letters), so each fake records
what it was asked and replays a script.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import orjson
import pandas as pd
from confluent_kafka import TIMESTAMP_CREATE_TIME, TopicPartition

from kedro_stream.config import StreamConfig


@dataclass
class FakeMessage:
    _topic: str
    _partition: int
    _offset: int
    _value: bytes
    _key: bytes | None = None

    def topic(self) -> str:
        return self._topic

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def value(self) -> bytes:
        return self._value

    def key(self) -> bytes | None:
        return self._key

    def headers(self) -> None:
        return None

    def timestamp(self) -> tuple[int, int]:
        return TIMESTAMP_CREATE_TIME, 1

    def error(self) -> None:
        return None


def records(topic: str, partition: int, values: Iterable[dict[str, Any]]) -> list[FakeMessage]:
    return [
        FakeMessage(topic, partition, offset, orjson.dumps(value))
        for offset, value in enumerate(values)
    ]


@dataclass
class FakeConsumer:
    """Hands out ``batches`` in turn, then nothing; records commits and seeks. Each commit
    first raises the next of ``commit_errors``, while there are any."""

    batches: list[list[FakeMessage]]
    commit_errors: list[Exception] = field(default_factory=list)
    commits: list[list[tuple[str, int, int]]] = field(default_factory=list)
    seeks: list[tuple[str, int, int]] = field(default_factory=list)
    on_assign: Callable[..., None] | None = None
    on_revoke: Callable[..., None] | None = None
    owned: list[TopicPartition] = field(default_factory=list)
    #: (topic, partition) the group takes away inside the next ``consume`` that hands out
    #: records: revoked while a batch is collected.
    revoke_on_consume: tuple[str, int] | None = None

    def subscribe(self, topics: list[str], **callbacks: Callable[..., None]) -> None:
        self.on_assign, self.on_revoke = callbacks["on_assign"], callbacks["on_revoke"]
        partitions = {(m.topic(), m.partition()) for batch in self.batches for m in batch}
        self.owned = [TopicPartition(t, p) for t, p in sorted(partitions)]
        self.on_assign(self, list(self.owned))

    def revoke(self, topic: str, partition: int) -> None:
        """What librdkafka does inside a poll when the group takes a partition away."""
        lost = [tp for tp in self.owned if (tp.topic, tp.partition) == (topic, partition)]
        self.owned = [tp for tp in self.owned if tp not in lost]
        assert self.on_revoke is not None
        self.on_revoke(self, lost)

    def consume(self, num_messages: int, timeout: float) -> list[FakeMessage]:
        polled = self.batches.pop(0) if self.batches else []
        if polled and self.revoke_on_consume is not None:
            self.revoke(*self.revoke_on_consume)
            self.revoke_on_consume = None
        return polled

    def poll(self, timeout: float) -> None:
        return None

    def commit(self, *, offsets: list[TopicPartition], asynchronous: bool) -> None:
        if self.commit_errors:
            raise self.commit_errors.pop(0)
        self.commits.append([(tp.topic, tp.partition, tp.offset) for tp in offsets])

    def assignment(self) -> list[TopicPartition]:
        return list(self.owned)

    def seek(self, tp: TopicPartition) -> None:
        self.seeks.append((tp.topic, tp.partition, tp.offset))

    def pause(self, partitions: list[TopicPartition]) -> None:
        pass

    def resume(self, partitions: list[TopicPartition]) -> None:
        pass

    def close(self) -> None:
        pass


@dataclass
class FakeProducer:
    """Acknowledges everything at ``flush``; records what was produced."""

    produced: list[tuple[str, bytes, bytes | None]] = field(default_factory=list)
    headers: list[dict[str, bytes]] = field(default_factory=list)  # one per produced message

    def produce(
        self,
        topic: str,
        value: bytes,
        key: bytes | None = None,
        *,
        partition: int | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> None:
        self.produced.append((topic, value, key))
        self.headers.append(dict(headers or []))

    def poll(self, timeout: float) -> int:
        return 0

    def flush(self, timeout: float) -> int:
        return 0

    def topics(self) -> list[str]:
        return [topic for topic, _, _ in self.produced]

    def stages(self) -> list[str]:
        """The ``error.stage`` of each dead letter produced."""
        return [
            h["kedro-stream.error.stage"].decode()
            for h in self.headers
            if "kedro-stream.error.stage" in h
        ]


class FakeSession:
    """A namespace ``ns`` with input ``batch`` and output ``out``; ``node`` computes ``out``."""

    def __init__(self, node: Callable[[pd.DataFrame], Any] = lambda batch: batch) -> None:
        self.node = node
        self.runs = 0

    def compiled(self, namespace: str | None) -> SimpleNamespace:
        return SimpleNamespace(
            inputs={"batch": "ns.batch"}, outputs={"ns.out": "out"}, states={}, report=()
        )

    def run(self, namespace: str | None, inputs: dict[str, Any]) -> dict[str, Any]:
        self.runs += 1
        return {"out": self.node(inputs["batch"])}


def stream_config(**changes: Any) -> StreamConfig:
    """One stream: topic ``in`` → namespace ``ns`` → topic ``out``, JSON both ways."""
    config: dict[str, Any] = {
        "namespace": "ns",
        "group_id": "g",
        "input": {"topics": ["in"], "dataset": "batch", "format": "json"},
        "outputs": {"out": {"topic": "out", "format": "json"}},
        "retry": {"attempts": 2, "backoff_ms": 1},
    }
    config.update(changes)
    return StreamConfig.model_validate(config)
