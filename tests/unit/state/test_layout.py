"""Where the state stores live: the keeper opens them and ``kedro stream reset`` deletes them
through this one layout, so both must agree on every path, and the reset must find only the
stores of the states it clears."""

from __future__ import annotations

from pathlib import Path

from kedro_stream.state.layout import StoreLayout
from tests.fake_clients import stream_config

STATE = {"counts": {"input": "counts", "updates": "counts_updates", "key": "k"}}


def test_a_relative_state_dir_is_under_the_project(tmp_path: Path) -> None:
    stream = stream_config(state=STATE, state_dir="data/state")
    assert StoreLayout.of(stream, tmp_path) == StoreLayout(tmp_path / "data/state/g", "in")


def test_an_absolute_state_dir_is_kept(tmp_path: Path) -> None:
    stream = stream_config(state=STATE, state_dir=str(tmp_path / "stores"))
    layout = StoreLayout.of(stream, tmp_path / "project")
    assert layout == StoreLayout(tmp_path / "stores" / "g", "in")


def test_another_group_has_a_folder_of_its_own(tmp_path: Path) -> None:
    stream = stream_config(state=STATE, state_dir="data/state", group_id="g-replay")
    assert StoreLayout.of(stream, tmp_path).root == tmp_path / "data/state/g-replay"


def test_a_store_is_per_state_and_input_partition(tmp_path: Path) -> None:
    layout = StoreLayout(tmp_path, "payments")
    assert layout.store("counts", 3) == tmp_path / "counts" / "payments-3"


def test_existing_finds_the_partition_stores_of_the_named_states_in_path_order(
    tmp_path: Path,
) -> None:
    layout = StoreLayout(tmp_path, "in")
    for name in (
        "counts/in-2",
        "counts/in-10",
        "counts/in-0",
        "totals/in-1",
        "counts/in-x",  # not a partition
        "counts/in-",
        "counts/in-2-0",  # another topic's: in-2, partition 0
        "counts/out-1",
        "other/in-0",  # a state not named
    ):
        (tmp_path / name).mkdir(parents=True)

    assert layout.existing(["counts", "totals", "missing"]) == [
        tmp_path / "counts/in-0",
        tmp_path / "counts/in-10",
        tmp_path / "counts/in-2",
        tmp_path / "totals/in-1",
    ]
    assert layout.existing([]) == []
