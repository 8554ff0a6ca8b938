from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pandas as pd


def enrich(batch: pd.DataFrame, lookup: pd.DataFrame, factor: float) -> pd.DataFrame:
    merged = batch.merge(lookup, on="kind", how="left")
    return merged.assign(value=merged["amount"] * merged["weight"] * factor)


def predict(enriched: pd.DataFrame, model: dict[str, Any]) -> pd.DataFrame:
    return enriched.assign(prediction=enriched["value"] * model["slope"] + model["intercept"])


def summarize(predictions: pd.DataFrame, threshold: float) -> dict[str, Any]:
    return {"rows": len(predictions), "high": int((predictions["prediction"] > threshold).sum())}


def fail_on_negative(predictions: pd.DataFrame) -> pd.DataFrame:
    if (predictions["amount"] < 0).any():
        raise ValueError("negative amount")
    return predictions[["id", "prediction"]]


def apply_rate(orders: pd.DataFrame, rates: dict[str, float]) -> pd.DataFrame:
    return orders.assign(converted=orders["amount"] * orders["currency"].map(rates))


def total(converted: pd.DataFrame) -> dict[str, float]:
    return {"total": float(converted["converted"].sum())}


GATE_LIMIT_S = 120.0


def slow_echo(batch: pd.DataFrame, seconds: float, gate: str) -> pd.DataFrame:
    """Stands for a long model call: longer than the consumer's max.poll.interval.ms.

    With a ``gate`` (a file path) it first waits for that file: a test opens the gate once it
    has seen what it needs while the batch runs, instead of hoping it happens within a time.
    """
    deadline = time.monotonic() + GATE_LIMIT_S
    while gate and not Path(gate).exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"the gate {gate} was not opened within {GATE_LIMIT_S} s")
        time.sleep(0.02)
    time.sleep(seconds)
    return batch


def not_a_table(batch: pd.DataFrame) -> int:
    """A node whose output cannot be published: the stream must apply its failure policy."""
    return len(batch)


def tally(events: pd.DataFrame, activity: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per event, its account's running count, total and gap since the previous event; and the
    accounts' new rows. One batch or many give the same features (events in order per account)."""
    rows = {row["account"]: row for row in activity.to_dict(orient="records")}
    features = []
    for event in events.to_dict(orient="records"):
        account = event["account"]
        row = rows.get(account) or {"account": account, "count": 0, "total": 0.0, "last": None}
        gap = None if row["last"] is None else event["event_time"] - row["last"]
        row = {
            "account": account,
            "count": row["count"] + 1,
            "total": row["total"] + event["amount"],
            "last": event["event_time"],
        }
        rows[account] = row
        features.append({"id": event["id"], **row, "gap": gap})
    touched = set(events["account"])
    updates = [row for account, row in rows.items() if account in touched]
    columns = ["account", "count", "total", "last"]
    return pd.DataFrame(features), pd.DataFrame(updates, columns=columns)


def tally_elsewhere(
    events: pd.DataFrame, activity: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A bug: an update for a key that is not in the batch."""
    features, updates = tally(events, activity)
    return features, updates.assign(account="somebody-else")
