"""Per-micro-batch scoring. kedro-stream calls these on every batch, so they stay
vectorised, silent and free of I/O; each accepts an empty or one-row batch."""

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from payment_fraud.features import PAYMENT_COLUMNS, risk_flags

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
ALERT_COLUMNS: tuple[str, ...] = (
    "payment_id",
    "account_id",
    "amount",
    "merchant_category",
    "score",
    "reason",
)
# Risk flag -> words, in the order they are listed in an alert's reason.
_REASONS: tuple[tuple[str, str], ...] = (
    ("cross_border", "cross-border"),
    ("card_not_present", "card not present"),
    ("high_amount", "high amount"),
    ("risky_category", "risky merchant category"),
    ("night", "night-time"),
)
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
_REASON_BITS = 1 << np.arange(len(_REASONS))


def clean_payments(payments: pd.DataFrame) -> pd.DataFrame:
    """Coerce a raw batch to the event schema, normalise codes, and drop replayed events.

    Upstream producers may resend a payment (at-least-once delivery), so only the first
    occurrence of a ``payment_id`` in the batch is scored. Extra columns are dropped.
    Columns already of the right dtype are not cast, which keeps a typical batch cheap.
    """
    missing = [column for column in PAYMENT_COLUMNS if column not in payments.columns]
    if missing:
        raise ValueError(f"payment batch lacks columns {missing}")
    columns = {
        name: payments[name] if payments[name].dtype == dtype else payments[name].astype(dtype)
        for name, dtype in _PAYMENT_DTYPES.items()
    }
    columns["currency"] = columns["currency"].str.strip().str.upper()
    columns["country"] = columns["country"].str.strip().str.upper()
    columns["merchant_category"] = columns["merchant_category"].str.strip().str.lower()
    clean = pd.DataFrame(columns)
    if clean["payment_id"].is_unique:
        return clean.reset_index(drop=True)
    return clean.drop_duplicates("payment_id", keep="first", ignore_index=True)


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
    scores = clean_payments.loc[:, ["payment_id", "account_id"]]
    scores["score"] = np.round(probability, 6)
    return scores


def flag_alerts(
    clean_payments: pd.DataFrame, scores: pd.DataFrame, alert_threshold: float
) -> pd.DataFrame:
    """Payments scoring at or above the threshold, with the risk factors an analyst sees.

    ``scores`` must be row-aligned with ``clean_payments``, as ``score_payments`` makes it.
    """
    score = scores["score"].to_numpy()
    hit = score >= alert_threshold
    hits = clean_payments.loc[hit]
    if hit.any():
        flags = risk_flags(hits)[_REASON_FLAGS].to_numpy()
    else:  # most small batches: no flags to describe
        flags = np.zeros((0, len(_REASON_FLAGS)), dtype=bool)
    alerts = hits.loc[:, ["payment_id", "account_id", "amount", "merchant_category"]]
    alerts["score"] = score[hit]
    alerts["reason"] = _REASON_TABLE[flags @ _REASON_BITS]
    return alerts.reset_index(drop=True)
