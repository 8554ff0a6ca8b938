"""Training: labelled payments in, the scoring namespace's model out."""

from kedro.pipeline import Pipeline, node

from .nodes import evaluate_model, split_payments, train_model


def create_pipeline() -> Pipeline:
    """Build the un-namespaced training pipeline; it writes ``scoring.model`` directly so
    the scoring namespace (and the stream service) picks the model up by name."""
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
                outputs="scoring.model",
                name="train_model",
            ),
            node(
                evaluate_model,
                inputs=["scoring.model", "holdout_payments"],
                outputs="training_metrics",
                name="evaluate_model",
            ),
        ]
    )
