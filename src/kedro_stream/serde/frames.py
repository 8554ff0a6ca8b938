"""Decoded records → the injected dataset (DataFrame or list of dicts), and back."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import pandas as pd

METADATA_COLUMNS = ("_key", "_topic", "_partition", "_offset", "_timestamp")


def to_dataset(
    records: list[dict[str, Any]],
    *,
    data_type: Literal["pandas", "records"],
    fields: Sequence[str] | None,
) -> Any:
    """Build the input dataset; an empty batch still has the schema's columns."""
    if data_type == "records":
        return records
    if fields is None:
        return pd.DataFrame.from_records(records)
    columns = list(fields)
    if records and METADATA_COLUMNS[0] in records[0]:
        columns += list(METADATA_COLUMNS)
    return pd.DataFrame.from_records(records, columns=columns)


def records_of(output: Any) -> list[dict[str, Any]]:
    """An output dataset as records: a DataFrame, a list of dicts, or one dict."""
    if isinstance(output, pd.DataFrame):
        return output.to_dict(orient="records")
    if isinstance(output, dict):
        return [output]
    if isinstance(output, list) and all(isinstance(r, dict) for r in output):
        return output
    raise TypeError(
        f"an output published to Kafka must be a DataFrame, a list of dicts or a dict, "
        f"got {type(output).__name__}"
    )
