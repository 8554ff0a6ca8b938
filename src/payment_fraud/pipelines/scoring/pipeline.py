"""Scoring: the namespace kedro-stream serves. Free inputs are ``scoring.payments``,
``scoring.model`` and ``params:scoring.alert_threshold``; outputs ``scoring.scores`` and
``scoring.alerts``. Intermediates stay in memory so a micro-batch never touches disk."""

from kedro.pipeline import Pipeline, node, pipeline

from payment_fraud.features import build_features

from .nodes import clean_payments, flag_alerts, score_payments


def create_pipeline() -> Pipeline:
    """Build the scoring nodes un-namespaced, then prefix everything with ``scoring``."""
    base_nodes = [
        node(clean_payments, inputs="payments", outputs="clean_payments", name="clean_payments"),
        node(build_features, inputs="clean_payments", outputs="features", name="build_features"),
        node(
            score_payments,
            inputs=["features", "model", "clean_payments"],
            outputs="scores",
            name="score_payments",
        ),
        node(
            flag_alerts,
            inputs=["clean_payments", "scores", "params:alert_threshold"],
            outputs="alerts",
            name="flag_alerts",
        ),
    ]
    return pipeline(base_nodes, namespace="scoring")
