"""Scoring: the namespace kedro-stream serves. Free inputs are ``payments`` (the events, shared
with data generation), ``fraud_model`` (shared with training) and
``params:scoring.alert_threshold``; outputs ``scoring.scores`` and ``scoring.alerts``.
Intermediates stay in memory so a micro-batch never touches disk."""

from kedro.pipeline import Pipeline, node, pipeline

from payment_fraud.features import build_features

from .nodes import clean_payments, flag_alerts, score_payments


def base_pipeline() -> Pipeline:
    """The scoring nodes, un-namespaced: ``payments`` and ``model`` in, ``scores`` and
    ``alerts`` out."""
    return Pipeline(
        [
            node(
                clean_payments, inputs="payments", outputs="clean_payments", name="clean_payments"
            ),
            node(
                build_features, inputs="clean_payments", outputs="features", name="build_features"
            ),
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
    )


def create_pipeline() -> Pipeline:
    """Prefix everything with ``scoring`` except the datasets shared with the other
    pipelines: the events and the trained model."""
    return pipeline(
        base_pipeline(),
        namespace="scoring",
        inputs={"payments": "payments", "model": "fraud_model"},
    )
