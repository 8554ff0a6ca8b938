"""Per-micro-batch scoring. kedro-stream calls these on every batch, so they stay
vectorised, silent and free of I/O; each accepts an empty or one-row batch.

On a batch of tens to a thousand rows, pandas' per-call costs (label indexing, aligning
Series, inferring dtypes) outweigh the arithmetic, so frames are built once from column
arrays and rows are picked by position."""

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from payment_fraud.features import PAYMENT_COLUMNS, flag_arrays

_PAYMENT_DTYPES: dict[str, str] = {
    "payment_id": "str",
    "account_id": "str",
    "merchant_id": "str",
    "merchant_category": "str",
    "amount": "float64",
    "currency": "str",
    "country": "str",
    "card_present": "bool",
    "event_time": "int64",
}
SCORE_COLUMNS: tuple[str, ...] = ("payment_id", "account_id", "score")
_ALERT_PAYMENT_COLUMNS = ("payment_id", "account_id", "amount", "merchant_category")
ALERT_COLUMNS: tuple[str, ...] = (*_ALERT_PAYMENT_COLUMNS, "score", "reason")
# Risk flag -> words, in the order they are listed in an alert's reason.
_REASONS: tuple[tuple[str, str], ...] = (
    ("cross_border", "cross-border"),
    ("card_not_present", "card not present"),
    ("high_amount", "high amount"),
    ("risky_category", "risky merchant category"),
    ("night", "night-time"),
    ("burst", "burst of payments"),
)
BURST_COUNT_1H = 3  # this many of an account's payments within an hour read as a burst
_NO_FLAGGED_REASON = "high model score"


def _reason_table() -> np.ndarray:
    """Reason text for every combination of risk flags, indexed by the flags' bitmask, so
    describing a batch is one array lookup instead of string work per row."""
    table = []
    for mask in range(2 ** len(_REASONS)):
        words = [text for bit, (_, text) in enumerate(_REASONS) if mask >> bit & 1]
        table.append(", ".join(words) or _NO_FLAGGED_REASON)
    return np.array(table, dtype=object)


_REASON_TABLE = _reason_table()
_REASON_FLAGS = [flag for flag, _ in _REASONS]
# The columns an alert copies, and those its risk flags are computed from.
_ALERT_INPUTS: tuple[str, ...] = (
    *_ALERT_PAYMENT_COLUMNS,
    "currency",
    "country",
    "card_present",
    "event_time",
)


def clean_payments(payments: pd.DataFrame) -> pd.DataFrame:
    """Coerce a raw batch to the event schema, normalise codes, and drop replayed events.

    Upstream producers may resend a payment (at-least-once delivery), so only the first
    occurrence of a ``payment_id`` in the batch is scored. Extra columns are dropped.
    Columns already of the right dtype are not cast, which keeps a typical batch cheap.
    """
    missing = [column for column in PAYMENT_COLUMNS if column not in payments.columns]
    if missing:
        raise ValueError(f"payment batch lacks columns {missing}")
    columns = {name: _as(payments[name], dtype) for name, dtype in _PAYMENT_DTYPES.items()}
    columns["currency"] = columns["currency"].str.strip().str.upper()
    columns["country"] = columns["country"].str.strip().str.upper()
    columns["merchant_category"] = columns["merchant_category"].str.strip().str.lower()
    # Arrays, not Series: the frame then has a fresh RangeIndex and nothing to align.
    clean = pd.DataFrame({name: column.array for name, column in columns.items()}, copy=False)
    if clean["payment_id"].is_unique:
        return clean
    return clean.drop_duplicates("payment_id", keep="first", ignore_index=True)


def _as(column: pd.Series, dtype: str) -> pd.Series:
    if column.dtype == dtype:
        return column
    if dtype == "int64" and pd.api.types.is_datetime64_any_dtype(column):
        # Epoch milliseconds read back as datetimes: pandas 2's JSON reader parses columns named
        # like `*_time` (pandas 3's does not), and a cast would give nanoseconds.
        return (column - pd.Timestamp(0, tz=column.dt.tz)) // pd.Timedelta(1, "ms")
    return column.astype(dtype)


def score_payments(
    features: pd.DataFrame, model: Pipeline, clean_payments: pd.DataFrame
) -> pd.DataFrame:
    """Fraud probability per payment, row-aligned with ``clean_payments``.

    An empty batch skips the model, since scikit-learn rejects zero-row input.
    """
    if len(features) == 0:
        probability = np.empty(0, dtype=np.float64)
    else:
        probability = model.predict_proba(features.to_numpy())[:, 1]  # fitted on the matrix
    return pd.DataFrame(
        {
            "payment_id": clean_payments["payment_id"].array,
            "account_id": clean_payments["account_id"].array,
            "score": np.round(probability, 6),
        },
        index=clean_payments.index,
        copy=False,
    )


def flag_alerts(
    clean_payments: pd.DataFrame,
    scores: pd.DataFrame,
    payment_features: pd.DataFrame,
    alert_threshold: float,
) -> pd.DataFrame:
    """Payments scoring at or above the threshold, with the risk factors an analyst sees.

    ``scores`` and ``payment_features`` must be row-aligned with ``clean_payments``, as
    ``score_payments`` and ``account_velocity`` make them.
    """
    score = scores["score"].to_numpy()
    hit = np.flatnonzero(score >= alert_threshold)
    picked = {name: clean_payments[name].array.take(hit) for name in _ALERT_INPUTS}
    flags = flag_arrays(picked)
    flags["burst"] = payment_features["count_1h"].to_numpy().take(hit) >= BURST_COUNT_1H
    reasons = np.zeros(len(hit), dtype=np.intp)  # bit i set: reason i applies
    for bit, flag in enumerate(_REASON_FLAGS):
        reasons |= flags[flag].astype(np.intp) << bit
    return pd.DataFrame(
        {
            **{name: picked[name] for name in _ALERT_PAYMENT_COLUMNS},
            "score": score[hit],
            "reason": _REASON_TABLE[reasons],
        },
        copy=False,
    )
