"""Data generation: synthetic labelled payments, and the unlabelled events the stream carries."""

from kedro.pipeline import Pipeline, node

from .nodes import generate_payments, strip_labels


def create_pipeline() -> Pipeline:
    """Build the un-namespaced generation pipeline; its event output feeds ``scoring``."""
    return Pipeline(
        [
            node(
                generate_payments,
                inputs="params:data_generation",
                outputs="labelled_payments",
                name="generate_payments",
            ),
            node(
                strip_labels,
                inputs="labelled_payments",
                outputs="payments",
                name="strip_labels",
            ),
        ]
    )
