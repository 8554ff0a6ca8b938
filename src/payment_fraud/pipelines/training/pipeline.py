"""Training: labelled payments in, the scoring namespace's model out."""

from kedro.pipeline import Pipeline, node

from .nodes import evaluate_model, history_velocity, split_payments, train_model


def create_pipeline() -> Pipeline:
    """Build the un-namespaced training pipeline; ``fraud_model`` is mapped into the scoring
    namespace as its ``model``. The velocity features come from the function the scoring
    namespace runs, over the whole history at once."""
    return Pipeline(
        [
            node(
                history_velocity,
                inputs="labelled_payments",
                outputs="payment_velocity",
                name="history_velocity",
            ),
            node(
                split_payments,
                inputs=["labelled_payments", "params:training"],
                outputs=["train_payments", "holdout_payments"],
                name="split_payments",
            ),
            node(
                train_model,
                inputs=["train_payments", "payment_velocity", "params:training"],
                outputs="fraud_model",
                name="train_model",
            ),
            node(
                evaluate_model,
                inputs=[
                    "fraud_model",
                    "holdout_payments",
                    "train_payments",
                    "payment_velocity",
                    "params:training",
                ],
                outputs="training_metrics",
                name="evaluate_model",
            ),
        ]
    )
