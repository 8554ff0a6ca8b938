"""State rows as the namespace sees them (a DataFrame per state) and as they are kept (JSON bytes
per key), and the checks that make a batch's updates a valid replacement of its keys' rows."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from kedro_stream.serde import EncodeError, records_of
from kedro_stream.serde.json import JsonCodec
from kedro_stream.state.errors import StateUpdateError

#: A row of the updates with this column true removes its key.
DELETED = "_deleted"
_JSON = JsonCodec(None)


def encode_row(row: Mapping[str, Any]) -> bytes:
    """A row as it is kept in the store and the changelog: JSON whose floats keep every bit."""
    return _JSON.encode(row)


def decode_row(value: bytes) -> dict[str, Any]:
    """A stored row; raises ``DecodeError`` for bytes that are not a JSON object."""
    return _JSON.decode(value)


def rows_frame(rows: Iterable[bytes], key: str) -> pd.DataFrame:
    """The state input of one run: the known rows of the batch's keys (no row for a new key)."""
    records = [decode_row(value) for value in rows]
    if not records:
        return pd.DataFrame({key: pd.Series(dtype=object)})
    return pd.DataFrame.from_records(records)


@dataclass(frozen=True)
class Change:
    """One key's new row (``None``: removed)."""

    key: str
    value: bytes | None


def changes_of(updates: Any, *, dataset: str, key: str, batch_keys: set[str]) -> list[Change]:
    """The updates output as changes, each for a key of the batch, at most one per key."""
    try:
        records = records_of(updates)
    except TypeError as exc:
        raise StateUpdateError(f"state updates {dataset!r}: {exc}") from None
    changes: list[Change] = []
    seen: set[str] = set()
    for record in records:
        if key not in record or record[key] is None:
            raise StateUpdateError(
                f"state updates {dataset!r}: a row has no {key!r} (the state key); "
                f"columns: {sorted(record)}"
            )
        value = str(record[key])
        if value not in batch_keys:
            raise StateUpdateError(
                f"state updates {dataset!r}: a row for key {value!r}, which no record of the "
                "batch has; a batch may only change the state of its own keys"
            )
        if value in seen:
            raise StateUpdateError(
                f"state updates {dataset!r}: two rows for key {value!r}; give one row per key"
            )
        seen.add(value)
        deleted = bool(record.get(DELETED))
        row = {k: v for k, v in record.items() if k != DELETED}
        try:
            changes.append(Change(value, None if deleted else encode_row(row)))
        except EncodeError as exc:
            raise StateUpdateError(f"state updates {dataset!r}, key {value!r}: {exc}") from None
    return changes
