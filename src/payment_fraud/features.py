"""Payment vocabulary and the one feature function shared by training and scoring.

Training fits the model on ``build_features`` output and the stream scorer calls the very
same function per micro-batch, so offline and online features cannot drift apart. Its input is
a payment and that payment's account velocity (``payment_fraud.velocity``), which both worlds
compute with one function too.
"""

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

PAYMENT_COLUMNS: tuple[str, ...] = (
    "payment_id",
    "account_id",
    "merchant_id",
    "merchant_category",
    "amount",
    "currency",
    "country",
    "card_present",
    "event_time",
)

MERCHANT_CATEGORIES: tuple[str, ...] = (
    "grocery",
    "restaurants",
    "fuel",
    "retail",
    "electronics",
    "travel",
    "gambling",
    "crypto",
)
RISKY_CATEGORIES: tuple[str, ...] = ("gambling", "crypto")

CARD_CURRENCIES: tuple[str, ...] = ("EUR", "USD", "GBP")

# Local currency of each merchant country: a card spending outside its currency area is
# cross-border, which needs no account master data and so works on a bare event.
COUNTRY_CURRENCY: dict[str, str] = {
    "DE": "EUR",
    "FR": "EUR",
    "NL": "EUR",
    "ES": "EUR",
    "IT": "EUR",
    "IE": "EUR",
    "GB": "GBP",
    "US": "USD",
    "BR": "BRL",
    "NG": "NGN",
    "TR": "TRY",
    "AE": "AED",
    "IN": "INR",
    "CN": "CNY",
}

NIGHT_END_HOUR = 6  # hours [0, 6) UTC count as night
HIGH_AMOUNT = 500.0
MS_PER_HOUR = 3_600_000

_FLAG_FEATURES: tuple[str, ...] = ("cross_border", "card_not_present", "night")
# What a bare event says.
EVENT_FEATURE_COLUMNS: tuple[str, ...] = (
    "log_amount",
    *_FLAG_FEATURES,
    *(f"category_{category}" for category in MERCHANT_CATEGORIES),
)
# What the account's recent payments say.
VELOCITY_FEATURE_COLUMNS: tuple[str, ...] = (
    "count_1h",
    "log_amount_1h",
    "count_24h",
    "log_amount_24h",
    "log_seconds_since_previous",
)
FEATURE_COLUMNS: tuple[str, ...] = (*EVENT_FEATURE_COLUMNS, *VELOCITY_FEATURE_COLUMNS)
# An account's first payment has no previous one: it counts as a quiet month.
_NO_PREVIOUS_S = 30 * 24 * 3600.0


# Lookup tables indexed by ``Index.get_indexer`` positions. get_indexer returns -1 for an
# unknown value, which picks the sentinel appended last: no local currency (so the payment
# counts as cross-border) and not a risky category.
_COUNTRY_INDEX = pd.Index(list(COUNTRY_CURRENCY))
_LOCAL_CURRENCY = np.array([*COUNTRY_CURRENCY.values(), ""], dtype=object)
_CATEGORY_INDEX = pd.Index(MERCHANT_CATEGORIES)
_IS_RISKY = np.array([*(c in RISKY_CATEGORIES for c in MERCHANT_CATEGORIES), False])


def risk_flags(payments: pd.DataFrame) -> pd.DataFrame:
    """Boolean risk indicators: model inputs, and the words used to explain an alert."""
    return pd.DataFrame(flag_arrays(payments), index=payments.index)


def flag_arrays(payments: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """``risk_flags`` as plain arrays, from a frame or from a mapping of column arrays: the
    scoring nodes run on every micro-batch, where building a DataFrame costs more than the
    arithmetic."""
    amount = np.asarray(payments["amount"], dtype=np.float64)
    hour = (np.asarray(payments["event_time"], dtype=np.int64) // MS_PER_HOUR) % 24
    local_currency = _LOCAL_CURRENCY[_COUNTRY_INDEX.get_indexer(payments["country"])]
    category = _CATEGORY_INDEX.get_indexer(payments["merchant_category"])
    return {
        "cross_border": local_currency != np.asarray(payments["currency"], dtype=object),
        "card_not_present": ~np.asarray(payments["card_present"], dtype=bool),
        "night": hour < NIGHT_END_HOUR,
        "risky_category": _IS_RISKY[category],
        "high_amount": amount >= HIGH_AMOUNT,
    }


def build_features(payments: pd.DataFrame, velocity: pd.DataFrame) -> pd.DataFrame:
    """Turn clean payments and their row-aligned velocity into the float matrix the model
    expects, in ``FEATURE_COLUMNS`` order.

    Categories are one-hot encoded against the fixed vocabulary rather than the batch's
    values, so a one-row batch yields the same columns as the training set; an unknown
    category encodes as all zeros instead of failing. The matrix is filled in place and
    wrapped once: one float block, which ``to_numpy`` hands to the model without a copy.
    """
    flags = flag_arrays(payments)
    category = _CATEGORY_INDEX.get_indexer(payments["merchant_category"])
    matrix = np.empty((len(payments), len(FEATURE_COLUMNS)), dtype=np.float64)
    matrix[:, 0] = np.log1p(payments["amount"].to_numpy(dtype=np.float64))
    for position, name in enumerate(_FLAG_FEATURES, start=1):
        matrix[:, position] = flags[name]
    first = 1 + len(_FLAG_FEATURES)
    last = first + len(MERCHANT_CATEGORIES)
    matrix[:, first:last] = category[:, np.newaxis] == np.arange(len(MERCHANT_CATEGORIES))
    since_previous = velocity["seconds_since_previous"].to_numpy(dtype=np.float64)
    since_previous = np.clip(np.nan_to_num(since_previous, nan=_NO_PREVIOUS_S), 0, _NO_PREVIOUS_S)
    matrix[:, last] = velocity["count_1h"].to_numpy(dtype=np.float64)
    matrix[:, last + 1] = np.log1p(velocity["amount_1h"].to_numpy(dtype=np.float64))
    matrix[:, last + 2] = velocity["count_24h"].to_numpy(dtype=np.float64)
    matrix[:, last + 3] = np.log1p(velocity["amount_24h"].to_numpy(dtype=np.float64))
    matrix[:, last + 4] = np.log1p(since_previous)
    return pd.DataFrame(matrix, index=payments.index, columns=list(FEATURE_COLUMNS), copy=False)
