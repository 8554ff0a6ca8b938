"""One partition's local store: rows by key with their position, tombstones, its checkpoint."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from kedro_stream.state.errors import StateError
from kedro_stream.state.store import MEMTABLES_BYTES, PartitionStore


def test_rows_tombstones_and_the_changelog_offset_survive_a_reopen(tmp_path: Path) -> None:
    path = tmp_path / "s" / "payments-0"
    store = PartitionStore(path)
    assert store.changelog_offset is None
    store.apply([("a", 3, b'{"n":1}'), ("b", 3, b'{"n":2}')], changelog_offset=7)
    store.apply([("b", 5, None)])  # removed, as of offset 5
    store.close()

    again = PartitionStore(path)
    assert again.changelog_offset == 7
    assert again.get(["a", "b", "c"]) == {"a": (3, b'{"n":1}'), "b": (5, None)}
    assert again.rows(["a", "b", "c"]) == [b'{"n":1}']
    assert again.count() == 1


def test_the_newest_as_of_counts_removals_too(tmp_path: Path) -> None:
    store = PartitionStore(tmp_path / "p")
    assert store.newest_as_of() == -1
    store.apply([("a", 3, b'{"n":1}'), ("b", 9, None)], changelog_offset=40)
    assert store.newest_as_of() == 9  # the removal's; the checkpoint is not an input offset


def test_a_multi_get_of_many_keys(tmp_path: Path) -> None:
    store = PartitionStore(tmp_path / "p")
    keys = [f"k{i}" for i in range(25_000)]  # more than one query's worth
    store.apply([(k, 1, b"{}") for k in keys[::2]])
    assert len(store.get(keys)) == 12_500


def test_a_write_that_fails_is_a_state_error(tmp_path: Path) -> None:
    store = PartitionStore(tmp_path / "p")
    store.close()
    with pytest.raises(StateError, match="cannot write the state store"):
        store.apply([("a", 1, b"{}")], changelog_offset=1)


def test_a_store_is_atomic_across_a_reopen(tmp_path: Path) -> None:
    store = PartitionStore(tmp_path / "p")
    store.apply([("a", 1, b"{}"), ("b", 1, b"{}")], changelog_offset=4)
    store.close()  # a killed process leaves its write-ahead log: reopened, all or nothing
    again = PartitionStore(tmp_path / "p")
    assert (again.changelog_offset, again.count()) == (4, 2)
    assert dict(again.items()) == {"a": b"{}", "b": b"{}"}


def test_a_store_that_cannot_be_opened_is_a_state_error(tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("a file where the store's folder should be")
    with pytest.raises(StateError, match=r"cannot open the state store .*taken/p"):
        PartitionStore(tmp_path / "taken" / "p")


def _memtable_bytes(stores: list[PartitionStore]) -> int:
    return sum(s._db.property_int_value("rocksdb.cur-size-all-mem-tables") or 0 for s in stores)


def test_the_stores_of_a_process_share_one_memtable_budget(tmp_path: Path) -> None:
    """A budget per store multiplied by the partitions: the service grew with its keys. Each
    memtable is charged for its arena's blocks too, so those must be small."""
    stores = [PartitionStore(tmp_path / f"p{i}") for i in range(24)]
    for n in range(10):  # as batches write: ~1.2 MiB a store, under its write buffer; 28 in all
        for store in stores:
            store.apply([(f"k{n}-{i}", 1, b"x" * 200) for i in range(500)])
    deadline = time.monotonic() + 10
    while _memtable_bytes(stores) > MEMTABLES_BYTES and time.monotonic() < deadline:
        time.sleep(0.05)  # flushes run in the background
    assert _memtable_bytes(stores) <= MEMTABLES_BYTES
