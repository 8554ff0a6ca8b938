"""Decoded records → the injected dataset (DataFrame or list of dicts), and back.

Both directions run once per micro-batch on every record, so they work column by column:
pandas' own ``DataFrame.from_records`` and ``to_dict(orient="records")`` walk the frame cell by
cell and cost several times more (``bench/throughput.py`` shows the difference)."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import repeat
from typing import Any, Literal

import numpy as np
import pandas as pd

METADATA_COLUMNS = ("_key", "_topic", "_partition", "_offset", "_timestamp")


def to_dataset(
    records: list[dict[str, Any]],
    *,
    data_type: Literal["pandas", "records"],
    fields: Sequence[str] | None,
) -> Any:
    """Build the input dataset; an empty batch still has the schema's columns. A field
    missing from a record is a missing value in its column."""
    if data_type == "records":
        return records
    if fields is None:
        return pd.DataFrame.from_records(records)
    columns = list(fields)
    if records and METADATA_COLUMNS[0] in records[0]:
        columns += list(METADATA_COLUMNS)
    return pd.DataFrame({name: [r.get(name) for r in records] for name in columns})


def records_of(output: Any) -> list[dict[str, Any]]:
    """An output dataset as records: a DataFrame, a list of dicts, or one dict."""
    if isinstance(output, pd.DataFrame):
        return _frame_records(output)
    if isinstance(output, dict):
        return [output]
    if isinstance(output, list) and all(isinstance(r, dict) for r in output):
        return output
    raise TypeError(
        f"an output published to Kafka must be a DataFrame, a list of dicts or a dict, "
        f"got {type(output).__name__}"
    )


def _frame_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """``frame.to_dict(orient="records")``'s values (plain Python scalars, ``None`` for pandas'
    NA), built a column at a time."""
    names = list(frame.columns)
    if len(set(names)) != len(names):  # to_dict's own rule for repeated labels (last one wins)
        return frame.to_dict(orient="records")
    columns = [_python_values(column) for _, column in frame.items()]  # iloc costs 10x more
    rows = zip(*columns, strict=False)  # the columns of one frame: equal lengths
    return list(map(dict, map(zip, repeat(names), rows)))


def _python_values(column: pd.Series) -> list[Any]:
    if column.dtype.kind in "biufc" and isinstance(column.dtype, np.dtype):
        return column.to_numpy().tolist()  # plain Python numbers and booleans, in C
    values = column.to_numpy(dtype=object).tolist()  # Timestamps, strings, objects as they are
    if column.dtype == object:
        return [v.item() if isinstance(v, np.generic) else v for v in values]
    if getattr(column.dtype, "na_value", None) is pd.NA:  # masked and NA-backed arrays
        return [None if v is pd.NA else v for v in values]
    return values
