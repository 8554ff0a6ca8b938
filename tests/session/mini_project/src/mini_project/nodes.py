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
