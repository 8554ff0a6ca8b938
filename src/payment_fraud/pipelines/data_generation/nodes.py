"""Synthetic payments, so the example runs offline and every run sees the same data.

The label is drawn first and each attribute is then drawn from a fraud- or legit-specific
distribution. That plants a signal a small model can learn (high amounts, cross-border,
card not present, risky merchants, night hours) without any real card data.

Some fraud comes in bursts instead: a stolen card is tried several times within minutes, each
payment looking like an everyday one. Only the account's velocity gives those away.
"""

from typing import Any

import numpy as np
import pandas as pd

from payment_fraud.features import (
    CARD_CURRENCIES,
    COUNTRY_CURRENCY,
    MERCHANT_CATEGORIES,
    MS_PER_HOUR,
    NIGHT_END_HOUR,
    PAYMENT_COLUMNS,
)

# Per category: share of legit payments, share of fraudulent payments, median amount.
_CATEGORY_PROFILE: dict[str, tuple[float, float, float]] = {
    "grocery": (0.30, 0.03, 40.0),
    "restaurants": (0.18, 0.04, 35.0),
    "fuel": (0.12, 0.03, 55.0),
    "retail": (0.20, 0.10, 60.0),
    "electronics": (0.08, 0.25, 250.0),
    "travel": (0.07, 0.20, 400.0),
    "gambling": (0.03, 0.15, 100.0),
    "crypto": (0.02, 0.20, 300.0),
}
_CURRENCY_SHARE = (0.60, 0.25, 0.15)  # aligned with CARD_CURRENCIES

# (legit, fraud) probabilities of each risk factor.
_P_CROSS_BORDER = (0.05, 0.55)
_P_CARD_PRESENT = (0.70, 0.15)
_P_NIGHT = (0.06, 0.45)
_FRAUD_AMOUNT_LOG_UPLIFT = 0.9  # fraud amounts are ~2.5x the category median
_AMOUNT_LOG_SIGMA = 0.6
_MS_PER_DAY = 24 * MS_PER_HOUR
_BURST_SIZES = (3, 8)  # payments per burst: from 3 up to 7
_BURST_SPAN_MS = 20 * 60 * 1000  # a burst's payments fall within 20 minutes


def _by_label(is_fraud: np.ndarray, probabilities: tuple[float, float]) -> np.ndarray:
    """Per-row probability: the legit value for legit rows, the fraud value for fraud."""
    return np.where(is_fraud, probabilities[1], probabilities[0])


def _draw_index(
    rng: np.random.Generator, is_fraud: np.ndarray, legit: np.ndarray, fraud: np.ndarray
) -> np.ndarray:
    """Draw one category index per row from a label-specific distribution, vectorised."""
    cdf = np.where(is_fraud[:, np.newaxis], np.cumsum(fraud), np.cumsum(legit))
    cdf /= cdf[:, -1:]
    return (rng.random(len(is_fraud))[:, np.newaxis] > cdf).sum(axis=1)


def _draw_countries(
    rng: np.random.Generator, currency: np.ndarray, cross_border: np.ndarray
) -> np.ndarray:
    """Pick a merchant country inside the card's currency area, or outside if cross-border."""
    country = np.empty(len(currency), dtype=object)
    all_countries = np.array(list(COUNTRY_CURRENCY))
    local = np.array(list(COUNTRY_CURRENCY.values()))
    for code in CARD_CURRENCIES:
        for abroad in (False, True):
            rows = (currency == code) & (cross_border == abroad)
            pool = all_countries[(local != code) if abroad else (local == code)]
            country[rows] = rng.choice(pool, size=int(rows.sum()))
    return country


def _plant_bursts(
    rng: np.random.Generator, rows: np.ndarray, account_idx: np.ndarray, event_time: np.ndarray
) -> None:
    """Group ``rows`` into bursts in place: each burst's payments share the account and the
    start time of its first row and follow it within ``_BURST_SPAN_MS``."""
    start = 0
    while start < len(rows):
        burst = rows[start : start + int(rng.integers(*_BURST_SIZES))]
        first = burst[0]
        account_idx[burst] = account_idx[first]
        offsets = np.sort(rng.integers(0, _BURST_SPAN_MS, len(burst)))
        event_time[burst] = event_time[first] + offsets - offsets[0]
        start += len(burst)


def _ids(prefix: str, numbers: np.ndarray, width: int) -> pd.Series:
    """Format integer ids as zero-padded strings such as ``p-000001``."""
    return prefix + pd.Series(numbers).astype(str).str.zfill(width)


def generate_payments(params: dict[str, Any]) -> pd.DataFrame:
    """Generate labelled payments deterministically from ``params["seed"]``.

    Rows are sorted by event time and numbered in that order, like a replayed stream.
    """
    rng = np.random.default_rng(params["seed"])
    n = int(params["n_payments"])
    n_accounts = int(params["n_accounts"])
    per_category = int(params["merchants_per_category"])

    is_fraud = rng.random(n) < params["fraud_rate"]
    in_burst = is_fraud & (rng.random(n) < params["burst_share"])
    # Burst payments are drawn like everyday ones: their account's velocity is their only tell.
    looks_fraud = is_fraud & ~in_burst

    profile = np.array(list(_CATEGORY_PROFILE.values()))
    category_idx = _draw_index(rng, looks_fraud, profile[:, 0], profile[:, 1])
    merchant_idx = category_idx * per_category + rng.integers(0, per_category, n)

    log_uplift = np.where(looks_fraud, _FRAUD_AMOUNT_LOG_UPLIFT, 0.0)
    amount = profile[category_idx, 2] * np.exp(rng.normal(log_uplift, _AMOUNT_LOG_SIGMA))

    night = rng.random(n) < _by_label(looks_fraud, _P_NIGHT)
    hour = np.where(night, rng.integers(0, NIGHT_END_HOUR, n), rng.integers(NIGHT_END_HOUR, 24, n))
    start_ms = int(np.datetime64(params["start_date"], "ms").astype(np.int64))
    event_time = (
        start_ms
        + rng.integers(0, int(params["days"]), n) * _MS_PER_DAY
        + hour * MS_PER_HOUR
        + rng.integers(0, MS_PER_HOUR, n)
    )
    account_idx = rng.integers(0, n_accounts, n)
    _plant_bursts(rng, np.flatnonzero(in_burst), account_idx, event_time)

    account_currency = rng.choice(np.array(CARD_CURRENCIES), size=n_accounts, p=_CURRENCY_SHARE)
    currency = account_currency[account_idx]
    cross_border = rng.random(n) < _by_label(looks_fraud, _P_CROSS_BORDER)

    payments = pd.DataFrame(
        {
            "account_id": _ids("a-", account_idx + 1, 5),
            "merchant_id": _ids("m-", merchant_idx + 1, 4),
            "merchant_category": np.array(MERCHANT_CATEGORIES)[category_idx],
            "amount": np.maximum(np.round(amount, 2), 0.01),
            "currency": currency,
            "country": _draw_countries(rng, currency, cross_border),
            "card_present": rng.random(n) < _by_label(is_fraud, _P_CARD_PRESENT),
            "event_time": event_time.astype(np.int64),
            "is_fraud": is_fraud,
        }
    ).sort_values("event_time", kind="stable", ignore_index=True)
    payments.insert(0, "payment_id", _ids("p-", np.arange(1, n + 1), 6))
    return payments


def strip_labels(labelled_payments: pd.DataFrame) -> pd.DataFrame:
    """Drop the label: what remains is exactly what a payment event on the stream carries."""
    return labelled_payments.loc[:, list(PAYMENT_COLUMNS)]
