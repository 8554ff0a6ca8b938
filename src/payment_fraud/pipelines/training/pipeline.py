"""Training: labelled payments in, the scoring namespace's model out."""

from kedro.pipeline import Pipeline, node

from .nodes import evaluate_model, split_payments, train_model


def create_pipeline() -> Pipeline:
    """Build the un-namespaced training pipeline; ``fraud_model`` is mapped into the scoring
    namespace as its ``model``."""
    return Pipeline(
        [
            node(
                split_payments,
                inputs=["labelled_payments", "params:training"],
                outputs=["train_payments", "holdout_payments"],
                name="split_payments",
            ),
            node(
                train_model,
                inputs=["train_payments", "params:training"],
                outputs="fraud_model",
                name="train_model",
            ),
            node(
                evaluate_model,
                inputs=["fraud_model", "holdout_payments"],
                outputs="training_metrics",
                name="evaluate_model",
            ),
        ]
    )
