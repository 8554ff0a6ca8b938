"""``kedro stream compile``'s pre-flight on the mini project, without a broker: a stream that
fits its namespace passes; a misfit is a problem of its own stream while the others are still
checked; an unpublished output is only a warning; a missing artifact says what creates it.
Each test boots Kedro, so they are few."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kedro.pipeline import Pipeline, node, pipeline

from kedro_stream.config import Project, parse_stream_file
from kedro_stream.service.preflight import StreamCheck, check_streams

SCORING = {
    "namespace": "ns",
    "group_id": "scoring",
    "input": {"topics": ["batches"], "dataset": "batch"},
    "outputs": {"checked": {"topic": "checked"}},
    "ignore_outputs": ["enriched", "summary"],
}


def checked(project: Path, **streams: dict[str, Any]) -> dict[str, StreamCheck]:
    file = parse_stream_file({"streams": streams}, {})
    return {check.name: check for check in check_streams(Project(project), file, None)}


def test_a_stream_that_fits_its_namespace_has_no_problem(mini_project: Path) -> None:
    verdict = checked(mini_project, scoring=SCORING)["scoring"]
    assert (verdict.problems, verdict.warnings) == ([], [])


def test_an_input_the_namespace_does_not_take_is_a_problem_and_the_rest_is_still_checked(
    mini_project: Path,
) -> None:
    """Compile reports every problem at once: the stream's own further ones, and the other
    streams' verdicts."""
    misfed = {
        **SCORING,
        "group_id": "orders",
        "input": {"topics": ["o"], "dataset": "orders"},
        "outputs": {"checked": {"topic": "checked"}, "scores": {"topic": "scores"}},
    }
    unignored = {key: value for key, value in SCORING.items() if key != "ignore_outputs"}

    verdicts = checked(mini_project, misfed=misfed, unignored=unignored)

    assert verdicts["misfed"].problems == [
        "stream.yml feeds dataset 'orders', which is not an input of namespace 'ns'; "
        "inputs: ['batch']",
        "stream.yml publishes ['scores'], which namespace 'ns' does not output; "
        "outputs: ['checked', 'enriched', 'summary']",
    ]
    assert verdicts["unignored"].problems == []
    assert "outputs ['enriched', 'summary']" in verdicts["unignored"].warnings[0]


def test_an_unpublished_output_is_a_warning_not_a_problem(mini_project: Path) -> None:
    stream = {**SCORING, "ignore_outputs": ["enriched"]}

    verdict = checked(mini_project, scoring=stream)["scoring"]

    assert verdict.problems == []
    assert verdict.warnings == [
        "Namespace 'ns' outputs ['summary'], which stream.yml does not publish: they are "
        "computed and dropped on every batch. Publish them under outputs:, or list them under "
        "ignore_outputs: to say it is on purpose"
    ]


def fit_model() -> dict[str, float]:
    return {"slope": 1.0, "intercept": 0.0}


def test_a_missing_artifact_is_a_problem_naming_the_kedro_run_that_creates_it(
    mini_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The mini project writes none of its artifacts: a pipeline ``fit`` that writes the model
    is registered beside its own, as a user's project would have one."""
    from mini_project import pipeline_registry

    registered = pipeline_registry.register_pipelines

    def with_fit() -> dict[str, Pipeline]:
        fit = pipeline([node(fit_model, None, "model", name="fit")], namespace="ns")
        return {**registered(), "fit": fit}

    monkeypatch.setattr(pipeline_registry, "register_pipelines", with_fit)
    (mini_project / "data" / "model.pkl").unlink()

    verdict = checked(mini_project, scoring=SCORING)["scoring"]

    assert verdict.problems == [
        "artifact 'ns.model' is not there yet: it is loaded once at start, so create it with "
        "`kedro run --pipeline fit` (or the job that writes it)"
    ]
