"""Model training on the shared features, with a stratified holdout to measure it."""

from typing import Any

import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from payment_fraud.features import build_features

LABEL = "is_fraud"


def split_payments(
    labelled_payments: pd.DataFrame, params: dict[str, Any]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Hold out a stratified share: with ~2% fraud, an unstratified split can starve the
    holdout of positives and make ROC AUC meaningless."""
    train, holdout = train_test_split(
        labelled_payments,
        test_size=params["test_size"],
        random_state=params["seed"],
        stratify=labelled_payments[LABEL],
    )
    return train, holdout


def train_model(train_payments: pd.DataFrame, params: dict[str, Any]) -> Pipeline:
    """Fit a scaled logistic regression: trains in well under a second and, unweighted,
    its probabilities stay calibrated to the real fraud rate, so a fixed alert threshold
    keeps its meaning."""
    model = make_pipeline(
        StandardScaler(),
        LogisticRegression(C=params["C"], max_iter=params["max_iter"]),
    )
    # Fitted on the bare matrix: build_features fixes the column order for training and scoring
    # alike, and a model fitted on a DataFrame re-checks feature names on every predict, which
    # costs a stream ~2 ms a micro-batch.
    features = build_features(train_payments).to_numpy()
    model.fit(features, train_payments[LABEL].to_numpy(dtype=bool))
    return model


def evaluate_model(model: Pipeline, holdout_payments: pd.DataFrame) -> dict[str, float | int]:
    """Score the holdout through the same feature function the stream uses."""
    labels = holdout_payments[LABEL].to_numpy(dtype=bool)
    scores = model.predict_proba(build_features(holdout_payments).to_numpy())[:, 1]
    return {
        "roc_auc": round(float(roc_auc_score(labels, scores)), 4),
        "average_precision": round(float(average_precision_score(labels, scores)), 4),
        "holdout_rows": len(holdout_payments),
        "holdout_frauds": int(labels.sum()),
    }
