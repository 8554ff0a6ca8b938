"""One partition's local store: rows by key with their position, tombstones, its checkpoint."""

from __future__ import annotations

from pathlib import Path

import pytest

from kedro_stream.state.errors import StateError
from kedro_stream.state.store import PartitionStore


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
