"""StateDataset, the state stores' stand-in under ``kedro run``: no rows (in the stream's shape)
without a snapshot, and a snapshot that keeps rows exactly as the store does, so a ``kedro run``
and the stream compute the same state."""

from __future__ import annotations

import struct
from pathlib import Path

import pandas as pd
import pytest
from kedro.io import DatasetError

from kedro_stream.datasets import StateDataset
from kedro_stream.state.rows import encode_row, rows_frame

COLUMNS = ["account_id", "payments", "total"]


def bits(values: list[float]) -> list[bytes]:
    return [struct.pack(">d", value) for value in values]


@pytest.mark.parametrize("filepath", [None, "no/snapshot/yet.jsonl"])
def test_without_a_snapshot_it_loads_no_rows_with_the_given_columns(
    tmp_path: Path, filepath: str | None
) -> None:
    dataset = StateDataset(
        columns=COLUMNS, filepath=None if filepath is None else str(tmp_path / filepath)
    )
    loaded = dataset.load()
    assert loaded.empty
    assert loaded.columns.tolist() == COLUMNS


def test_saved_rows_load_back_as_they_were(tmp_path: Path) -> None:
    """As the stream reads them: pandas' type guessing would make whole floats integers and
    digit strings numbers."""
    dataset = StateDataset(columns=COLUMNS, filepath=str(tmp_path / "state" / "activity.jsonl"))
    rows = pd.DataFrame(
        {"account_id": ["007", "12"], "payments": [3, 1], "total": [12.0, 4.0], "tag": ["x", None]}
    )
    dataset.save(rows)
    pd.testing.assert_frame_equal(dataset.load(), rows)


@pytest.mark.parametrize(
    "rows",
    [
        [{"account_id": "007", "tag": "x"}, {"account_id": "12", "tag": None}],
        [{"account_id": "a", "payments": 3}, {"account_id": "b", "payments": None}],
        [{"account_id": "a", "total": 1.5}, {"account_id": "b"}],  # a column a row lacks
        [{"account_id": "a", "events": [[1, 2.5]]}, {"account_id": "b", "events": []}],
        [{"account_id": "a", "last_time": 1_735_732_800_000}],  # epoch millis, not a date
    ],
)
def test_a_snapshot_loads_as_the_stream_reads_the_same_rows(
    tmp_path: Path, rows: list[dict]
) -> None:
    """On pandas 2 too, whose read_json made a JSON null NaN where the stream's state input
    keeps None, and a ``*_time`` column of numbers datetimes: a node saw one under ``kedro run``
    and the other in the stream."""
    snapshot = tmp_path / "activity.jsonl"
    snapshot.write_bytes(b"".join(encode_row(row) + b"\n" for row in rows))
    loaded = StateDataset(filepath=str(snapshot)).load()
    stream = rows_frame([encode_row(row) for row in rows], "account_id")
    assert loaded.dtypes.to_dict() == stream.dtypes.to_dict()
    assert repr(loaded.to_dict(orient="records")) == repr(stream.to_dict(orient="records"))


def test_a_snapshot_is_the_store_row_encoding_and_floats_keep_every_bit(tmp_path: Path) -> None:
    """The store's encoding writes the shortest text that reads back to the same double; the
    snapshot must be read back as precisely, or a ``kedro run`` would drift from the stream."""
    snapshot = tmp_path / "activity.jsonl"
    totals = [0.1 + 0.2, 1 / 3, 123456789.12345678, 2.2250738585072014e-308, 1e22, -0.0, 4.35]
    rows = pd.DataFrame({"account_id": [f"k{i}" for i in range(len(totals))], "total": totals})
    dataset = StateDataset(filepath=str(snapshot))

    dataset.save(rows)

    assert snapshot.read_bytes() == b"".join(
        encode_row(row) + b"\n" for row in rows.to_dict(orient="records")
    )
    assert bits(dataset.load()["total"].tolist()) == bits(totals)


def test_saving_without_a_filepath_is_an_error_naming_filepath() -> None:
    dataset = StateDataset(columns=COLUMNS)
    with pytest.raises(DatasetError, match=r"without a filepath .* set filepath"):
        dataset.save(pd.DataFrame({"account_id": ["a"], "payments": [1], "total": [1.0]}))


def test_it_always_exists_since_load_always_answers(tmp_path: Path) -> None:
    assert StateDataset()._exists()
    assert StateDataset(filepath=str(tmp_path / "missing.jsonl"))._exists()


def test_its_description_names_the_snapshot_and_the_columns(tmp_path: Path) -> None:
    described = str(StateDataset(columns=COLUMNS, filepath="data/state/activity.jsonl"))
    assert "data/state/activity.jsonl" in described
    assert "account_id" in described
