"""Project pipelines, registered explicitly because their names are a contract with
kedro-stream and the CLI (``kedro run --pipeline scoring``)."""

from kedro.pipeline import Pipeline

from payment_fraud.pipelines import data_generation, scoring, training


def register_pipelines() -> dict[str, Pipeline]:
    """Map pipeline names to pipelines; ``__default__`` runs the whole batch flow."""
    pipelines = {
        "data_generation": data_generation.create_pipeline(),
        "training": training.create_pipeline(),
        "scoring": scoring.create_pipeline(),
    }
    pipelines["__default__"] = sum(pipelines.values(), Pipeline([]))
    return pipelines
