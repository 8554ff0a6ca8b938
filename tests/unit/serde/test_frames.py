"""The column-wise conversions between records and DataFrames agree with pandas' own."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from kedro_stream.serde import build_codec, records_of, to_dataset
from tests.records import PAYMENT, SCHEMAS


def _same(left: object, right: object) -> bool:
    if isinstance(left, float) and math.isnan(left):
        return isinstance(right, float) and math.isnan(right)
    return type(left) is type(right) and (left is right or left == right)


MIXED = pd.DataFrame(
    {
        "arrow_str": pd.array(["a", None], dtype="string[pyarrow]"),
        "str": ["x", None],
        "float": [1.5, np.nan],
        "int": [1, 2],
        "uint": np.array([1, 2], dtype=np.uint8),
        "bool": [True, False],
        "datetime": pd.to_datetime([0, None]),
        "datetime_tz": pd.to_datetime([0, None]).tz_localize("UTC"),
        "timedelta": pd.to_timedelta([1, None]),
        "Int64": pd.array([1, None], dtype="Int64"),
        "boolean": pd.array([True, None], dtype="boolean"),
        "object": pd.Series([np.int64(3), {"nested": [1]}], dtype=object),
        "category": pd.Categorical(["u", None]),
        "arrow_float": pd.array([1.5, None], dtype="float64[pyarrow]"),
    }
)


@pytest.mark.parametrize("column", list(MIXED.columns))
def test_records_of_a_frame_gives_what_to_dict_gives(column: str) -> None:
    frame = MIXED[[column]]
    expected = frame.to_dict(orient="records")
    got = records_of(frame)
    assert len(got) == len(expected)
    for mine, theirs in zip(got, expected, strict=True):
        assert list(mine) == list(theirs)
        assert _same(mine[column], theirs[column]), (mine, theirs)


def test_records_of_keeps_labels_and_handles_repeated_ones() -> None:
    assert records_of(pd.DataFrame({0: [1], "b": ["x"]})) == [{0: 1, "b": "x"}]
    repeated = pd.DataFrame([[1, 2]], columns=["a", "a"])
    with pytest.warns(UserWarning, match="not unique"):
        assert records_of(repeated) == repeated.to_dict(orient="records")
    assert records_of(pd.DataFrame(columns=["a"])) == []


def test_to_dataset_builds_the_frame_from_records_builds() -> None:
    records = [PAYMENT, {**PAYMENT, "payment_id": "p-2", "amount": 3}]
    fields = list(PAYMENT)
    built = to_dataset(records, data_type="pandas", fields=fields)
    pd.testing.assert_frame_equal(built, pd.DataFrame.from_records(records, columns=fields))


def test_a_field_missing_from_a_record_is_a_missing_value() -> None:
    partial = {k: v for k, v in PAYMENT.items() if k != "amount"}
    built = to_dataset([PAYMENT, partial], data_type="pandas", fields=list(PAYMENT))
    assert built["amount"].isna().tolist() == [False, True]
    assert built["amount"].dtype == np.float64


def test_empty_batch_keeps_the_schema_columns() -> None:
    fields = build_codec("json", SCHEMAS / "payment.avsc").fields
    frame = to_dataset([], data_type="pandas", fields=fields)
    assert list(frame.columns) == list(PAYMENT)
    assert to_dataset([PAYMENT], data_type="records", fields=fields) == [PAYMENT]


def test_records_of_accepts_frames_lists_and_dicts() -> None:
    assert records_of(pd.DataFrame([{"a": 1}])) == [{"a": 1}]
    assert records_of([{"a": 1}]) == [{"a": 1}]
    assert records_of({"a": 1}) == [{"a": 1}]
    with pytest.raises(TypeError, match="must be a DataFrame, a list of dicts or a dict"):
        records_of(3)
