"""Catalog datasets for ``kedro run`` of a namespace that the stream also runs.

A namespace that keeps per-key state reads it as a table of state rows and returns the rows
that replace them. In the stream, kedro-stream injects those rows on every batch from its state
store; under ``kedro run`` the whole history is one batch, and :class:`StateDataset` stands in
for the store: empty, or a JSON Lines snapshot.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from kedro.io import AbstractDataset, DatasetError

from kedro_stream.state.rows import decode_row, encode_row


class StateDataset(AbstractDataset[pd.DataFrame, pd.DataFrame]):
    """State rows for ``kedro run``: a JSON Lines snapshot if there is one, else no rows.

    Example catalog.yml::

        account_activity:
          type: kedro_stream.datasets.StateDataset
          columns: [account_id, payments, total]

        account_activity_updates:
          type: kedro_stream.datasets.StateDataset
          filepath: data/state/account_activity.jsonl

    Args:
        columns: the columns of the empty table loaded when there is no snapshot, so nodes see
            the same shape as in the stream.
        filepath: a JSON Lines snapshot; loaded when it exists, written on save.
        metadata: free-form, as every Kedro dataset takes it (``kedro-stream`` reads its own).
    """

    def __init__(
        self,
        *,
        columns: list[str] | None = None,
        filepath: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self._columns = list(columns or [])
        self._filepath = Path(filepath) if filepath is not None else None
        self.metadata = metadata

    def load(self) -> pd.DataFrame:
        """The snapshot's rows, decoded as the stream decodes the store's (on pandas 2, pandas'
        own JSON reader made a null NaN where the stream has None, and a ``*_time`` column of
        numbers datetimes), or an empty table with ``columns``."""
        if self._filepath is not None and self._filepath.exists():
            lines = self._filepath.read_bytes().splitlines()
            records = [decode_row(line) for line in lines if line.strip()]
            if records:
                return pd.DataFrame.from_records(records)
        return pd.DataFrame(columns=self._columns)

    def save(self, data: pd.DataFrame) -> None:
        """Write the rows as a JSON Lines snapshot, encoded as the state store encodes them."""
        if self._filepath is None:
            raise DatasetError(
                "StateDataset without a filepath has nowhere to save state rows: set filepath "
                "(a JSON Lines snapshot) in its catalog entry."
            )
        self._filepath.parent.mkdir(parents=True, exist_ok=True)
        # The store's own row encoding: floats keep every bit, as in the changelog.
        with self._filepath.open("wb") as file:
            for row in data.to_dict(orient="records"):
                file.write(encode_row(row) + b"\n")

    def _exists(self) -> bool:
        return True  # load always answers: the snapshot, or no rows

    def _describe(self) -> dict[str, Any]:
        return {
            "filepath": None if self._filepath is None else self._filepath.as_posix(),
            "columns": self._columns,
        }
