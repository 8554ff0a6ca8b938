"""Scoring: the namespace kedro-stream serves. Free inputs are ``payments`` (the events, shared
with data generation), ``scoring.account_activity`` (each account's recent payments: the
state), ``fraud_model`` (shared with training) and ``params:scoring.alert_threshold``; outputs
``scoring.payment_features``, ``scoring.scores``, ``scoring.alerts`` and
``scoring.account_activity_updates`` (the state's new rows). Intermediates stay in memory so a
micro-batch never touches disk."""

from kedro.pipeline import Pipeline, node, pipeline

from payment_fraud.features import build_features
from payment_fraud.velocity import account_velocity

from .nodes import clean_payments, flag_alerts, score_payments


def base_pipeline() -> Pipeline:
    """The scoring nodes, un-namespaced: ``payments``, ``account_activity`` and ``model`` in;
    ``payment_features``, ``scores``, ``alerts`` and ``account_activity_updates`` out."""
    return Pipeline(
        [
            node(
                clean_payments, inputs="payments", outputs="clean_payments", name="clean_payments"
            ),
            node(
                account_velocity,
                inputs=["clean_payments", "account_activity"],
                outputs=["payment_features", "account_activity_updates"],
                name="account_velocity",
            ),
            node(
                build_features,
                inputs=["clean_payments", "payment_features"],
                outputs="features",
                name="build_features",
            ),
            node(
                score_payments,
                inputs=["features", "model", "clean_payments"],
                outputs="scores",
                name="score_payments",
            ),
            node(
                flag_alerts,
                inputs=[
                    "clean_payments",
                    "scores",
                    "payment_features",
                    "params:alert_threshold",
                ],
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
