from __future__ import annotations

import time
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


def slow_echo(batch: pd.DataFrame, seconds: float) -> pd.DataFrame:
    """Stands for a long model call: longer than the consumer's max.poll.interval.ms."""
    time.sleep(seconds)
    return batch


def not_a_table(batch: pd.DataFrame) -> int:
    """A node whose output cannot be published: the stream must apply its failure policy."""
    return len(batch)
