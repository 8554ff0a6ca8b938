"""A batch's state updates: each for a key of the batch, one per key, or the batch fails."""

from __future__ import annotations

import pandas as pd
import pytest

from kedro_stream.state.errors import StateUpdateError
from kedro_stream.state.rows import Change, changes_of, decode_row, rows_frame


def updates(*rows: dict) -> pd.DataFrame:
    return pd.DataFrame(list(rows))


def test_updates_become_changes_and_deleted_rows_tombstones() -> None:
    frame = updates(
        {"account_id": "a", "n": 2, "_deleted": False},
        {"account_id": "b", "n": 0, "_deleted": True},
    )
    changes = changes_of(frame, dataset="activity_updates", key="account_id", batch_keys={"a", "b"})
    assert changes[1] == Change("b", None)
    assert changes[0].key == "a"
    assert decode_row(changes[0].value or b"") == {"account_id": "a", "n": 2}


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (updates({"account_id": "z", "n": 1}), r"'activity_updates': a row for key 'z', which no"),
        (
            updates({"account_id": "a", "n": 1}, {"account_id": "a", "n": 2}),
            r"'activity_updates': two rows for key 'a'",
        ),
        (updates({"n": 1}), r"'activity_updates': a row has no 'account_id' \(the state key\)"),
        ([1, 2], r"'activity_updates': an output published to Kafka must be a DataFrame"),
    ],
)
def test_bad_updates_name_the_dataset_and_the_key(frame: object, message: str) -> None:
    with pytest.raises(StateUpdateError, match=message):
        changes_of(frame, dataset="activity_updates", key="account_id", batch_keys={"a"})


def test_the_state_input_has_the_key_column_even_when_no_key_has_a_row() -> None:
    empty = rows_frame([], "account_id")
    assert list(empty.columns) == ["account_id"] and empty.empty
    frame = rows_frame([b'{"account_id": "a", "events": [[1, 2.5]]}'], "account_id")
    assert frame.to_dict(orient="records") == [{"account_id": "a", "events": [[1, 2.5]]}]
