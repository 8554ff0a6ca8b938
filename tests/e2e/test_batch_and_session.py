"""One pipeline, two ways: `kedro run` on files and `session.run` on micro-batches agree."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from kedro_stream import NamespaceSpec, boot_project
from tests.conftest import kedro, run_kedro


def read_jsonl(path: Path) -> pd.DataFrame:
    return pd.read_json(path, lines=True, dtype=False)


def test_session_scores_equal_kedro_run(project_after_kedro_run: Path) -> None:
    """Micro-batches through the Python API, carrying each account's state row between them as
    the stream's store does, give what `kedro run` computed over the whole history at once."""
    data = project_after_kedro_run / "data"
    events = read_jsonl(data / "01_raw/payments.jsonl")
    batch_features = pd.read_parquet(data / "04_feature/payment_features.parquet")
    batch_scores = read_jsonl(data / "07_model_output/scores.jsonl")
    batch_alerts = read_jsonl(data / "08_reporting/alerts.jsonl")
    assert len(events) == len(batch_scores) > 1000
    assert len(batch_alerts) > 0

    state = NamespaceSpec(
        namespace="scoring", states={"account_activity": "account_activity_updates"}
    )
    store: dict[str, dict] = {}
    features, scores, alerts = [], [], []
    with boot_project(project_after_kedro_run, namespaces=["scoring"], specs=[state]) as session:
        for start in range(0, len(events), 997):  # uneven micro-batches
            batch = events.iloc[start : start + 997]
            rows = [store[a] for a in set(batch["account_id"]) if a in store]
            out = session.run(
                "scoring",
                inputs={"payments": batch, "account_activity": pd.DataFrame(rows)},
            )
            store.update(
                {r["account_id"]: r for r in out["account_activity_updates"].to_dict("records")}
            )
            features.append(out["payment_features"])
            scores.append(out["scores"])
            alerts.append(out["alerts"])

    pd.testing.assert_frame_equal(
        pd.concat(features, ignore_index=True), batch_features, check_dtype=False
    )
    pd.testing.assert_frame_equal(
        pd.concat(scores, ignore_index=True), batch_scores, check_dtype=False
    )
    pd.testing.assert_frame_equal(
        pd.concat(alerts, ignore_index=True), batch_alerts, check_dtype=False
    )


def test_stream_help_lists_commands(project_after_kedro_run: Path) -> None:
    out = kedro(project_after_kedro_run, "stream", "--help").stdout
    assert "Run pipeline namespaces as Kafka stream processors" in out
    assert "compile" in out


def test_compile_prints_the_roles_of_scoring(project_after_kedro_run: Path) -> None:
    out = kedro(project_after_kedro_run, "stream", "compile", "--namespace", "scoring").stdout
    rows = {
        cells[0]: cells[1]
        for line in out.splitlines()
        if line.startswith("│")
        and len(cells := [c.strip() for c in line.strip("│").split("│")]) > 1
    }
    assert rows["payments"] == "input"
    assert rows["fraud_model"] == "artifact"
    assert rows["params:scoring.alert_threshold"] == "parameter"
    assert rows["scoring.scores"] == "output"
    assert rows["scoring.alerts"] == "output"
    assert rows["scoring.features"] == "intermediate"
    assert rows["scoring.payment_features"] == "output"
    assert rows["scoring.account_activity"] == "state"
    assert rows["scoring.account_activity_updates"] == "state"
    assert "namespace: scoring" in out
    assert "namespace: None" not in out


def test_compile_without_flags_compiles_the_stream_of_stream_yml(
    project_after_kedro_run: Path,
) -> None:
    """Before, it compiled the __default__ pipeline: a table for namespace None, and the state
    datasets shown as a plain input and output."""
    out = kedro(project_after_kedro_run, "stream", "compile").stdout
    rows = {
        cells[0]: cells[1]
        for line in out.splitlines()
        if line.startswith("│")
        and len(cells := [c.strip() for c in line.strip("│").split("│")]) > 1
    }
    assert rows["scoring.account_activity"] == "state"
    assert rows["scoring.account_activity_updates"] == "state"
    assert rows["payments"] == "input"
    assert "namespace: scoring" in out
    assert "namespace: None" not in out
    assert "stream payment-scoring:" in out


def test_compile_reports_an_unknown_namespace(project_after_kedro_run: Path) -> None:
    done = run_kedro(project_after_kedro_run, "stream", "compile", "--namespace", "scorin")
    assert done.returncode != 0
    error = done.stderr.strip().splitlines()[-1]  # one line, after the logs
    assert error.startswith("Error: ")
    assert "Namespaces 'scorin' are not in pipeline '__default__'" in error
    assert "namespaces: 'None', 'scoring'" in error
