"""Restoring a store: per key, the newest row not beyond the committed offset, whatever order
and repetitions the changelog holds; a corrupt record stops the restore."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from confluent_kafka import OFFSET_BEGINNING, KafkaError, TopicPartition

from kedro_stream.state.changelog import AS_OF
from kedro_stream.state.errors import CorruptChangelog
from kedro_stream.state.restore import restore
from kedro_stream.state.store import PartitionStore

CHANGELOG = TopicPartition("g-activity-changelog", 3)


@dataclass
class Record:
    _offset: int
    _key: bytes | None
    _value: bytes | None
    _as_of: bytes | None

    def error(self) -> None:
        return None

    def topic(self) -> str:
        return CHANGELOG.topic

    def partition(self) -> int:
        return CHANGELOG.partition

    def offset(self) -> int:
        return self._offset

    def key(self) -> bytes | None:
        return self._key

    def value(self) -> bytes | None:
        return self._value

    def headers(self) -> list[tuple[str, bytes]]:
        return [] if self._as_of is None else [(AS_OF, self._as_of)]


class End:
    def error(self) -> KafkaError:
        return KafkaError(KafkaError._PARTITION_EOF)

    def partition(self) -> int:
        return CHANGELOG.partition


class Changelog:
    """A restore consumer replaying ``records`` from the assigned offset, then the end."""

    def __init__(self, records: list[Record]) -> None:
        self.records = records
        self.assigned: list[TopicPartition] = []
        self._sent = False

    def assign(self, partitions: list[TopicPartition]) -> None:
        self.assigned = partitions
        self._sent = False

    def unassign(self) -> None:
        pass

    def consume(self, _n: int, _timeout: float) -> list[object]:
        if self._sent:
            return [End()]
        self._sent = True
        start = self.assigned[0].offset
        first = 0 if start == OFFSET_BEGINNING else start
        return [r for r in self.records if r._offset >= first] + [End()]


def row(n: int) -> bytes:
    return b'{"n": %d}' % n


def log(*entries: tuple[str, int, bytes | None]) -> list[Record]:
    return [Record(i, k.encode(), v, str(a).encode()) for i, (k, a, v) in enumerate(entries)]


def test_the_newest_committed_row_of_each_key_wins(tmp_path: Path) -> None:
    records = log(
        ("a", 10, row(1)),
        ("b", 10, row(1)),
        ("a", 30, row(3)),  # a batch that never committed (crash before its commit)
        ("a", 20, row(2)),  # that batch again, shorter, committed
        ("b", 15, None),  # b removed
        ("c", 12, row(9)),
        ("c", 11, row(8)),  # an older row written later (a member that lost its partition)
    )
    store = PartitionStore(tmp_path / "s")
    done = restore({3: store}, Changelog(records), CHANGELOG.topic, {3: 25})  # type: ignore[arg-type]
    assert store.get(["a", "b", "c"]) == {"a": (20, row(2)), "b": (15, None), "c": (12, row(9))}
    assert (done.records, done.applied, done.skipped) == (7, 3, 4)
    assert store.changelog_offset == 7


def test_a_restore_goes_on_from_the_store_checkpoint(tmp_path: Path) -> None:
    records = log(("a", 10, row(1)), ("a", 20, row(2)), ("a", 18, row(7)))
    store = PartitionStore(tmp_path / "s")
    store.apply([("a", 10, row(1))], changelog_offset=1)
    changelog = Changelog(records)
    restore({3: store}, changelog, CHANGELOG.topic, {3: 20})  # type: ignore[arg-type]
    assert changelog.assigned[0].offset == 1
    assert store.get(["a"]) == {"a": (20, row(2))}  # 18 is older than what the store holds


def test_nothing_committed_means_no_row_counts(tmp_path: Path) -> None:
    store = PartitionStore(tmp_path / "s")
    restore({3: store}, Changelog(log(("a", 1, row(1)))), CHANGELOG.topic, {3: None})  # type: ignore[arg-type]
    assert store.get(["a"]) == {}


@pytest.mark.parametrize(
    ("record", "message"),
    [
        (Record(4, b"a", b"not json", b"3"), r"offset 4, key 'a': not a state row"),
        (Record(4, b"a", row(1), None), r"offset 4, key 'a': no integer kedro-stream.state.as_of"),
        (Record(4, b"a", row(1), b"x"), r"no integer kedro-stream.state.as_of"),
        (Record(4, None, row(1), b"3"), r"g-activity-changelog\[3\] offset 4: no key"),
    ],
)
def test_a_corrupt_record_stops_the_restore(tmp_path: Path, record: Record, message: str) -> None:
    store = PartitionStore(tmp_path / "s")
    with pytest.raises(CorruptChangelog, match=message):
        restore({3: store}, Changelog([record]), CHANGELOG.topic, {3: 10})  # type: ignore[arg-type]
    assert store.get(["a"]) == {}
