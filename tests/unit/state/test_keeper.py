"""A stream's state keeper against a fake group, a changelog in memory and real local stores:
what an assignment restores, what a batch reads, which changes it publishes and writes, and
which local stores are not trusted. The loop relies on each of these to keep exactly the
committed state; ``NoState`` must let a stateless stream take the same steps doing nothing."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import orjson
import pandas as pd
import pytest
from confluent_kafka import OFFSET_BEGINNING, OFFSET_INVALID, KafkaError, TopicPartition

from kedro_stream.metrics import StreamMetrics
from kedro_stream.records import Decoded, Outgoing
from kedro_stream.state.changelog import AS_OF, changelog_record
from kedro_stream.state.errors import StateError
from kedro_stream.state.keeper import NoState, StateChanges, StateKeeper
from kedro_stream.state.layout import StoreLayout
from kedro_stream.state.rows import Change, encode_row
from kedro_stream.state.store import Entry, PartitionStore
from tests.fake_clients import FakeMessage, stream_config

COUNTS = "g-counts-changelog"
TOTALS = "g-totals-changelog"


@dataclass
class ChangelogMessage:
    """A changelog record as the restore consumer hands it out."""

    record: Outgoing
    _offset: int

    def error(self) -> None:
        return None

    def topic(self) -> str:
        return self.record.topic

    def partition(self) -> int:
        assert self.record.partition is not None
        return self.record.partition

    def offset(self) -> int:
        return self._offset

    def key(self) -> bytes | None:
        return self.record.key

    def value(self) -> bytes | None:
        return self.record.value

    def headers(self) -> list[tuple[str, bytes]] | None:
        return self.record.headers


@dataclass
class EndOfPartition:
    _partition: int

    def error(self) -> KafkaError:
        return KafkaError(KafkaError._PARTITION_EOF)

    def partition(self) -> int:
        return self._partition


@dataclass
class Changelogs:
    """The changelog topics in memory, and the restore consumer reading them: each assigned
    partition from its offset to its end, then the end of partition. ``while_reading`` is
    called in every ``consume``."""

    logs: dict[tuple[str, int], list[Outgoing]] = field(default_factory=lambda: defaultdict(list))
    reads: list[tuple[str, int, int]] = field(default_factory=list)  # each assignment's start
    while_reading: Callable[[], None] = lambda: None
    closed: bool = False
    _assigned: list[TopicPartition] = field(default_factory=list)

    def publish(self, records: Iterable[Outgoing]) -> None:
        for record in records:
            assert record.partition is not None
            self.logs[(record.topic, record.partition)].append(record)

    def assign(self, partitions: list[TopicPartition]) -> None:
        self._assigned = list(partitions)
        self.reads += [(tp.topic, tp.partition, tp.offset) for tp in partitions]

    def consume(self, num_messages: int, timeout: float) -> list[Any]:
        self.while_reading()
        found: list[Any] = []
        for tp in self._assigned:
            start = 0 if tp.offset == OFFSET_BEGINNING else tp.offset
            log = self.logs[(tp.topic, tp.partition)]
            found += [
                ChangelogMessage(r, offset) for offset, r in enumerate(log) if offset >= start
            ]
            found.append(EndOfPartition(tp.partition))
        self._assigned = []
        return found

    def unassign(self) -> None:
        self._assigned = []

    def get_watermark_offsets(self, tp: TopicPartition, timeout: float) -> tuple[int, int]:
        return 0, len(self.logs[(tp.topic, tp.partition)])

    def close(self) -> None:
        self.closed = True


@dataclass
class Group:
    """The group's consumer as the keeper asks it: the committed offset of each input
    partition (none: nothing committed there)."""

    committed_at: dict[int, int] = field(default_factory=dict)

    def committed(self, partitions: list[TopicPartition], timeout: float) -> list[TopicPartition]:
        return [
            TopicPartition(
                tp.topic, tp.partition, self.committed_at.get(tp.partition, OFFSET_INVALID)
            )
            for tp in partitions
        ]


@pytest.fixture
def changelogs() -> Changelogs:
    return Changelogs()


@pytest.fixture
def metrics() -> StreamMetrics:
    return StreamMetrics(group="g", namespace="ns", guarantee="at_least_once")


def new_keeper(
    tmp_path: Path,
    changelogs: Changelogs,
    metrics: StreamMetrics,
    states: tuple[str, ...] = ("counts",),
) -> StateKeeper:
    stream = stream_config(
        state={name: {"input": name, "updates": f"{name}_updates", "key": "k"} for name in states},
        state_dir=str(tmp_path / "state"),
    )
    return StateKeeper(
        stream,
        project_path=tmp_path,
        metrics=metrics,
        restore_consumer=lambda: changelogs,  # type: ignore[arg-type,return-value]
    )


@pytest.fixture
def keeper(tmp_path: Path, changelogs: Changelogs, metrics: StreamMetrics) -> StateKeeper:
    return new_keeper(tmp_path, changelogs, metrics)


def row(key: str, n: int) -> bytes:
    return encode_row({"k": key, "n": n})


def logged(changelogs: Changelogs, topic: str, partition: int, *entries: Entry) -> None:
    """Changelog records of (key, as_of, row) in ``topic``'s ``partition``."""
    changelogs.publish(
        changelog_record(topic, partition, Change(key, value), as_of)
        for key, as_of, value in entries
    )


def assign(keeper: StateKeeper, group: Group, *partitions: int) -> None:
    keeper.on_assign(group, [TopicPartition("in", p) for p in partitions])  # type: ignore[arg-type]


def batch(*records: tuple[int, str]) -> list[Decoded]:
    """Good records of the input, (partition, key) each."""
    return [
        (FakeMessage("in", p, offset, orjson.dumps({"k": k}), k.encode()), {"k": k})
        for offset, (p, k) in enumerate(records)
    ]


def offsets(**next_offsets: int) -> list[TopicPartition]:
    """The offsets a batch commits, by input partition: ``offsets(p0=12)``."""
    return [TopicPartition("in", int(p[1:]), o) for p, o in next_offsets.items()]


def updates(*rows: dict[str, Any]) -> dict[str, pd.DataFrame]:
    """The run's outputs: state ``counts``'s updates."""
    return {"counts_updates": pd.DataFrame(list(rows))}


def keys_gauge(metrics: StreamMetrics, partition: int, state: str = "counts") -> float | None:
    labels = {"group": "g", "state": state, "topic": "in", "partition": str(partition)}
    return metrics.registry.get_sample_value("kedro_stream_state_keys", labels)


def stored(keeper: StateKeeper, key: str, state: str = "counts") -> dict[str, Any] | None:
    found = keeper.row(state, key)
    return None if found is None else orjson.loads(found)


def test_an_assignment_restores_each_partition_up_to_its_committed_offset(
    keeper: StateKeeper, changelogs: Changelogs, metrics: StreamMetrics
) -> None:
    logged(changelogs, COUNTS, 0, ("a", 4, row("a", 1)), ("b", 5, row("b", 1)))
    logged(changelogs, COUNTS, 0, ("a", 9, row("a", 2)))  # its batch never committed
    logged(changelogs, COUNTS, 1, ("c", 3, row("c", 1)), ("d", 7, row("d", 1)))
    group = Group({0: 5, 1: 3})

    keeper.on_assign(group, [TopicPartition("in", 0), TopicPartition("in", 1)])  # type: ignore[arg-type]

    assert [stored(keeper, k) for k in "abcd"] == [
        {"k": "a", "n": 1},
        {"k": "b", "n": 1},
        {"k": "c", "n": 1},
        None,  # as of 7, beyond partition 1's committed offset 3
    ]
    assert changelogs.reads == [(COUNTS, 0, OFFSET_BEGINNING), (COUNTS, 1, OFFSET_BEGINNING)]
    assert (keys_gauge(metrics, 0), keys_gauge(metrics, 1)) == (2, 1)


def test_an_assignment_of_other_topics_partitions_opens_no_store(
    keeper: StateKeeper, changelogs: Changelogs
) -> None:
    keeper.on_assign(Group(), [TopicPartition("other", 0)])  # type: ignore[arg-type]
    assert changelogs.reads == []


def test_the_keeper_is_restoring_only_while_it_restores(
    keeper: StateKeeper, changelogs: Changelogs
) -> None:
    seen: list[bool] = []
    changelogs.while_reading = lambda: seen.append(keeper.restoring)
    assert keeper.restoring is False
    assign(keeper, Group({0: 1}), 0)
    assert seen == [True]
    assert keeper.restoring is False


def test_a_failed_restore_leaves_the_keeper_not_restoring(
    keeper: StateKeeper, changelogs: Changelogs
) -> None:
    """/readyz reads ``restoring``: a restore that failed must not leave it stuck."""
    changelogs.publish([Outgoing(COUNTS, b"not json", b"a", [(AS_OF, b"0")], 0)])
    with pytest.raises(StateError, match="not a state row"):
        assign(keeper, Group({0: 1}), 0)
    assert keeper.restoring is False


def test_a_read_gives_each_state_the_rows_of_the_batch_keys_only(
    tmp_path: Path, changelogs: Changelogs, metrics: StreamMetrics
) -> None:
    keeper = new_keeper(tmp_path, changelogs, metrics, states=("counts", "totals"))
    logged(changelogs, COUNTS, 0, ("a", 1, row("a", 1)), ("b", 1, row("b", 2)))
    logged(changelogs, COUNTS, 0, ("x", 1, None))  # removed
    logged(changelogs, COUNTS, 1, ("d", 1, row("d", 4)))
    logged(changelogs, TOTALS, 0, ("a", 1, row("a", 10)))
    assign(keeper, Group({0: 1, 1: 1}), 0, 1)

    read = keeper.read(batch((0, "a"), (1, "d"), (0, "e"), (0, "x"), (0, "a")))

    assert set(read) == {"counts", "totals"}
    assert read["counts"].sort_values("k").to_dict("records") == [
        {"k": "a", "n": 1},
        {"k": "d", "n": 4},
    ]
    assert read["totals"].to_dict("records") == [{"k": "a", "n": 10}]


def test_a_read_of_keys_without_rows_is_an_empty_frame_with_the_key_column(
    keeper: StateKeeper,
) -> None:
    assign(keeper, Group({0: 1}), 0)
    read = keeper.read(batch((0, "a")))
    assert read["counts"].empty
    assert list(read["counts"].columns) == ["k"]
    assert keeper.read([]) == {}  # no records: there is no run


def test_changes_are_changelog_records_in_the_input_partition_as_of_its_committed_offset(
    keeper: StateKeeper,
) -> None:
    assign(keeper, Group({0: 1, 1: 1}), 0, 1)
    good = batch((0, "a"), (1, "d"))
    keeper.read(good)

    changes = keeper.changes(
        updates({"k": "d", "n": 4}, {"k": "a", "n": 1}), good, offsets(p0=12, p1=7)
    )

    assert changes.records == [
        Outgoing(COUNTS, row("d", 4), b"d", [(AS_OF, b"7")], 1),
        Outgoing(COUNTS, row("a", 1), b"a", [(AS_OF, b"12")], 0),
    ]
    assert dict(changes.entries) == {
        ("counts", 1): [("d", 7, row("d", 4))],
        ("counts", 0): [("a", 12, row("a", 1))],
    }


def test_only_the_changed_keys_get_a_record(keeper: StateKeeper) -> None:
    assign(keeper, Group({0: 1}), 0)
    good = batch((0, "a"), (0, "b"), (0, "c"))
    keeper.read(good)
    changes = keeper.changes(updates({"k": "b", "n": 1}), good, offsets(p0=3))
    assert [record.key for record in changes.records] == [b"b"]


def test_a_partition_missing_from_the_offsets_gets_no_changes(keeper: StateKeeper) -> None:
    """It was revoked during the run: its new owner processes the records again."""
    assign(keeper, Group(), 0, 1)
    good = batch((0, "a"), (1, "d"))
    keeper.read(good)

    changes = keeper.changes(updates({"k": "a", "n": 1}, {"k": "d", "n": 1}), good, offsets(p0=12))

    assert [(r.key, r.partition) for r in changes.records] == [(b"a", 0)]
    assert set(changes.entries) == {("counts", 0)}


def test_no_outputs_means_no_run_and_no_changes(keeper: StateKeeper) -> None:
    assign(keeper, Group(), 0)
    good = batch((0, "a"))
    keeper.read(good)
    changes = keeper.changes({}, good, offsets(p0=1))
    assert changes.records == []
    assert not changes.entries


def test_applying_writes_only_the_committed_partitions(
    keeper: StateKeeper, changelogs: Changelogs, metrics: StreamMetrics
) -> None:
    logged(changelogs, COUNTS, 1, ("d", 1, row("d", 1)))
    assign(keeper, Group({0: 1, 1: 1}), 0, 1)
    good = batch((0, "a"), (1, "d"))
    keeper.read(good)
    changes = keeper.changes(
        updates({"k": "a", "n": 1}, {"k": "d", "n": 2}), good, offsets(p0=12, p1=7)
    )

    keeper.apply(changes, offsets(p0=12))  # partition 1's commit did not happen

    assert stored(keeper, "a") == {"k": "a", "n": 1}
    assert stored(keeper, "d") == {"k": "d", "n": 1}
    assert (keys_gauge(metrics, 0), keys_gauge(metrics, 1)) == (1, 1)


def test_a_deleted_update_removes_the_key(
    keeper: StateKeeper, changelogs: Changelogs, metrics: StreamMetrics
) -> None:
    logged(changelogs, COUNTS, 0, ("a", 1, row("a", 1)), ("b", 1, row("b", 1)))
    assign(keeper, Group({0: 1}), 0)
    good = batch((0, "a"), (0, "b"), (0, "c"))
    keeper.read(good)
    changes = keeper.changes(
        updates(
            {"k": "a", "n": 1, "_deleted": True},
            {"k": "b", "n": 2, "_deleted": False},
            {"k": "c", "n": 1, "_deleted": False},
        ),
        good,
        offsets(p0=4),
    )
    assert [(r.key, r.value) for r in changes.records] == [
        (b"a", None),  # a tombstone
        (b"b", row("b", 2)),  # _deleted is no column of the row
        (b"c", row("c", 1)),
    ]

    keeper.apply(changes, offsets(p0=4))

    assert [stored(keeper, k) for k in "abc"] == [None, {"k": "b", "n": 2}, {"k": "c", "n": 1}]
    assert keys_gauge(metrics, 0) == 2  # a removed, c added


def test_a_row_is_answered_for_owned_partitions_only(
    keeper: StateKeeper, changelogs: Changelogs
) -> None:
    logged(changelogs, COUNTS, 0, ("a", 1, row("a", 1)))
    logged(changelogs, COUNTS, 1, ("d", 1, row("d", 1)))
    assign(keeper, Group({0: 1, 1: 1}), 0, 1)
    assert keeper.row("counts", "d") == row("d", 1)
    assert keeper.row("other", "d") is None

    keeper.on_revoke([TopicPartition("in", 1)])

    assert keeper.row("counts", "d") is None  # still on disk, but no longer this member's
    assert keeper.row("counts", "a") == row("a", 1)


def one_committed_update(keeper: StateKeeper, changelogs: Changelogs) -> Group:
    """Partition 0 assigned, then one batch (``a`` counted once) published and committed."""
    group = Group()
    assign(keeper, group, 0)
    good = batch((0, "a"))
    keeper.read(good)
    changes = keeper.changes(updates({"k": "a", "n": 1}), good, offsets(p0=1))
    changelogs.publish(changes.records)
    group.committed_at[0] = 1
    keeper.apply(changes, offsets(p0=1))
    return group


def test_a_revoked_store_is_checkpointed_so_its_next_restore_starts_at_the_changelog_end(
    keeper: StateKeeper, changelogs: Changelogs, metrics: StreamMetrics
) -> None:
    group = one_committed_update(keeper, changelogs)

    keeper.on_revoke([TopicPartition("in", 0)])
    assert keys_gauge(metrics, 0) is None  # no series for a partition not owned
    assign(keeper, group, 0)

    assert changelogs.reads[-1] == (COUNTS, 0, 1)
    assert stored(keeper, "a") == {"k": "a", "n": 1}


def test_a_lost_store_is_not_checkpointed(keeper: StateKeeper, changelogs: Changelogs) -> None:
    """The group took the partition away: a new owner may be writing its changelog already."""
    group = one_committed_update(keeper, changelogs)

    keeper.on_lost([TopicPartition("in", 0)])
    assign(keeper, group, 0)

    assert changelogs.reads[-1] == (COUNTS, 0, OFFSET_BEGINNING)
    assert stored(keeper, "a") == {"k": "a", "n": 1}


def test_a_partition_assigned_again_without_a_revoke_is_reopened(
    keeper: StateKeeper, changelogs: Changelogs
) -> None:
    logged(changelogs, COUNTS, 0, ("a", 1, row("a", 1)))
    assign(keeper, Group({0: 1}), 0)
    assign(keeper, Group({0: 1}), 0)  # RocksDB locks a store: it must have been closed first
    assert stored(keeper, "a") == {"k": "a", "n": 1}


def test_closing_releases_the_stores_and_the_restore_consumer(
    keeper: StateKeeper, changelogs: Changelogs, metrics: StreamMetrics
) -> None:
    assign(keeper, Group({0: 1}), 0)
    keeper.close()
    assert changelogs.closed
    assert keeper.row("counts", "a") is None
    assert keys_gauge(metrics, 0) is None


def local_store(tmp_path: Path, partition: int = 0) -> PartitionStore:
    """The store the keeper of ``new_keeper`` opens for state ``counts``."""
    return PartitionStore(StoreLayout(tmp_path / "state" / "g", "in").store("counts", partition))


class OtherLife(NamedTuple):
    """A local store left by another life: its checkpoint, the as_of of its rows, and the
    group's committed offset now; ``reason`` is what the warning says."""

    checkpoint: int | None
    as_of: int
    committed: int | None
    reason: str


@pytest.mark.parametrize(
    "life",
    [
        OtherLife(1, 1, None, "nothing committed"),
        OtherLife(7, 1, 5, "its checkpoint is beyond the changelog's end"),
        OtherLife(None, 9, 5, "it has rows beyond the committed offset 5: offsets moved back"),
        # Regression: a deferred commit, the partition's first, dropped when it was lost.
        OtherLife(None, 4, None, "it has rows while nothing is committed"),
    ],
    ids=[
        "nothing committed",
        "checkpoint beyond the changelog",
        "rows beyond the committed",
        "rows while nothing committed",
    ],
)
def test_a_local_store_from_another_life_is_deleted_and_rebuilt(
    tmp_path: Path,
    changelogs: Changelogs,
    metrics: StreamMetrics,
    caplog: pytest.LogCaptureFixture,
    life: OtherLife,
) -> None:
    old = local_store(tmp_path)
    old.apply([("a", life.as_of, row("a", 99)), ("z", life.as_of, row("z", 99))], life.checkpoint)
    old.close()
    logged(changelogs, COUNTS, 0, ("a", 1, row("a", 1)))  # the changelog's end: 1
    keeper = new_keeper(tmp_path, changelogs, metrics)

    with caplog.at_level(logging.WARNING, logger="kedro_stream.state.keeper"):
        assign(keeper, Group({} if life.committed is None else {0: life.committed}), 0)

    assert stored(keeper, "z") is None
    assert stored(keeper, "a") == (None if life.committed is None else {"k": "a", "n": 1})
    assert changelogs.reads == [(COUNTS, 0, OFFSET_BEGINNING)]
    assert f"Deleted the local store {tmp_path / 'state' / 'g' / 'counts' / 'in-0'}" in caplog.text
    assert life.reason in caplog.text


def test_a_local_store_whose_only_newer_entry_is_a_removal_is_rebuilt(
    tmp_path: Path, changelogs: Changelogs, metrics: StreamMetrics
) -> None:
    """Regression: offsets moved back (a reset elsewhere) while this machine's store had
    removed ``a`` as of 20; the group committed 10 and the changelog holds ``a``'s row as of 8.
    The check of entries beyond the committed offset read live rows only, so the store was
    kept and its removal hid the row the state as of 10 has."""
    old = local_store(tmp_path)
    old.apply([("a", 20, None)])
    old.close()
    logged(changelogs, COUNTS, 0, ("a", 8, row("a", 1)))
    keeper = new_keeper(tmp_path, changelogs, metrics)

    assign(keeper, Group({0: 10}), 0)

    assert stored(keeper, "a") == {"k": "a", "n": 1}


def test_a_local_store_of_this_life_is_kept_and_caught_up_from_its_checkpoint(
    tmp_path: Path, changelogs: Changelogs, metrics: StreamMetrics, caplog: pytest.LogCaptureFixture
) -> None:
    own = local_store(tmp_path)
    own.apply([("a", 1, row("a", 1))], changelog_offset=1)
    own.close()
    logged(changelogs, COUNTS, 0, ("a", 1, row("a", 1)), ("b", 3, row("b", 1)))
    keeper = new_keeper(tmp_path, changelogs, metrics)

    with caplog.at_level(logging.WARNING, logger="kedro_stream.state.keeper"):
        assign(keeper, Group({0: 3}), 0)

    assert changelogs.reads == [(COUNTS, 0, 1)]
    assert (stored(keeper, "a"), stored(keeper, "b")) == ({"k": "a", "n": 1}, {"k": "b", "n": 1})
    assert "Deleted" not in caplog.text


def test_a_state_dir_that_cannot_be_written_fails_at_construction(
    tmp_path: Path, changelogs: Changelogs, metrics: StreamMetrics
) -> None:
    (tmp_path / "state").write_text("a file where the state directory should be")
    with pytest.raises(StateError, match=r"state_dir .*state/g cannot be written"):
        new_keeper(tmp_path, changelogs, metrics)


def test_no_state_reads_nothing_changes_nothing_and_ignores_every_callback() -> None:
    state = NoState()
    good = batch((0, "a"))
    committed = offsets(p0=1)
    partitions = [TopicPartition("in", 0)]

    assert state.key is None
    assert state.changelogs == []
    assert state.read(good) == {}
    changes = state.changes(updates({"k": "a", "n": 1}), good, committed)
    assert changes == StateChanges()
    state.apply(changes, committed)
    assert state.row("counts", "a") is None
    state.on_assign(Group(), partitions)  # type: ignore[arg-type]
    state.on_revoke(partitions)
    state.on_lost(partitions)
    state.close()
    assert state.restoring is False
