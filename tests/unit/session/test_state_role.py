"""Per-key state as a pair of datasets: state rows injected on every run, their updates returned."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from kedro.framework.hooks.manager import _create_hook_manager
from kedro.io import DataCatalog, DatasetError
from kedro.pipeline import Pipeline, node, pipeline
from kedro.runner import SequentialRunner

from kedro_stream import NamespaceSpec, StreamSession
from kedro_stream.cli.printers import ROLE_STYLE
from kedro_stream.datasets import StateDataset
from kedro_stream.errors import InjectionError, SpecError
from kedro_stream.session import Role
from kedro_stream.session.compiler import CompiledNamespace, compile_namespace

STATE_TYPE = "kedro_stream.datasets.StateDataset"
COLUMNS = ["account_id", "payments", "total"]
SPEC = NamespaceSpec(namespace="risk", states={"account_activity": "account_activity_updates"})


def track(activity: pd.DataFrame, payments: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(state rows, events) -> (features, new state rows): a pure node, as the stream needs."""
    seen = payments.groupby("account_id", as_index=False).agg(
        payments=("amount", "size"), total=("amount", "sum")
    )
    before = activity.astype({"payments": "int64", "total": "float64"})
    merged = seen.merge(before, on="account_id", how="left", suffixes=("", "_before"))
    merged = merged.fillna({"payments_before": 0, "total_before": 0.0})
    updates = pd.DataFrame(
        {
            "account_id": merged["account_id"],
            "payments": (merged["payments"] + merged["payments_before"]).astype("int64"),
            "total": merged["total"] + merged["total_before"],
        }
    )
    return payments.merge(updates, on="account_id"), updates


def flag(features: pd.DataFrame, limit: float) -> pd.DataFrame:
    return features[features["total"] > limit]


def risk_pipeline() -> Pipeline:
    return pipeline(
        [
            node(
                track,
                ["account_activity", "payments"],
                ["features", "account_activity_updates"],
                name="track",
            ),
            node(flag, ["features", "params:limit"], "alerts", name="flag"),
        ],
        namespace="risk",
    )


def risk_catalog(activity: dict[str, Any] | None = None) -> DataCatalog:
    catalog = DataCatalog.from_config(
        {
            "risk.account_activity": activity or {"type": STATE_TYPE, "columns": COLUMNS},
            "risk.account_activity_updates": {"type": STATE_TYPE},
        }
    )
    catalog["params:risk.limit"] = 100.0
    return catalog


def compiled(spec: NamespaceSpec | None = SPEC) -> CompiledNamespace:
    return compile_namespace(risk_pipeline(), risk_catalog(), "risk", spec)


def session(spec: NamespaceSpec | None = SPEC) -> StreamSession:
    return StreamSession(
        {"risk": compiled(spec)},
        pipeline=risk_pipeline(),
        catalog=risk_catalog(),
        hook_manager=_create_hook_manager(),
        run_params={},
    )


def report(result: CompiledNamespace) -> dict[str, tuple[Role, str]]:
    return {entry.name: (entry.role, entry.reason) for entry in result.report}


def payments(*rows: tuple[str, float]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["account_id", "amount"])


def test_a_spec_state_and_its_updates_have_the_state_role() -> None:
    result = compiled()
    entries = report(result)
    assert entries["risk.account_activity"] == (
        Role.STATE,
        "state rows of the batch's keys (injected)",
    )
    assert entries["risk.account_activity_updates"] == (
        Role.STATE,
        "state updates (to the store and changelog)",
    )
    assert entries["risk.payments"][0] is Role.INPUT
    assert entries["risk.features"][0] is Role.INTERMEDIATE
    assert result.states == {"account_activity": "account_activity_updates"}
    assert result.inputs == {
        "account_activity": "risk.account_activity",
        "payments": "risk.payments",
    }
    assert "risk.account_activity" not in result.static  # injected, never loaded once


def test_the_report_keeps_the_declared_columns_and_whether_the_catalog_has_an_entry() -> None:
    """What compile checks a state key against, and a state with no catalog entry by."""
    entries = {entry.name: entry for entry in compiled().report}

    assert entries["risk.account_activity"].columns == tuple(COLUMNS)
    assert entries["risk.account_activity_updates"].columns is None  # declares none
    assert entries["risk.account_activity"].declared
    assert not entries["risk.payments"].declared
    assert not entries["risk.features"].declared


def test_updates_are_returned_even_when_the_spec_lists_other_outputs() -> None:
    spec = SPEC.model_copy(update={"outputs": ("alerts",)})
    result = compiled(spec)
    assert result.outputs == {
        "risk.account_activity_updates": "account_activity_updates",
        "risk.alerts": "alerts",
    }


def test_full_names_work_in_states() -> None:
    spec = NamespaceSpec(
        namespace="risk", states={"risk.account_activity": "risk.account_activity_updates"}
    )
    assert compiled(spec).states == {"account_activity": "account_activity_updates"}


def test_without_a_spec_a_state_dataset_is_an_injectable_input() -> None:
    result = compiled(None)
    entries = report(result)
    assert entries["risk.account_activity"] == (Role.INPUT, "state dataset (injected)")
    assert "account_activity" in result.inputs
    assert entries["risk.account_activity_updates"][0] is Role.OUTPUT  # stored in the catalog
    assert result.states == {}


def test_any_dataset_named_a_state_is_injected_not_loaded_once() -> None:
    pickled = risk_catalog({"type": "pickle.PickleDataset", "filepath": "nowhere/activity.pkl"})
    inferred = compile_namespace(risk_pipeline(), pickled, "risk", None, load_artifacts=False)
    assert report(inferred)["risk.account_activity"][0] is Role.ARTIFACT
    # Loaded at boot it would fail (there is no file): as a state it is never loaded.
    assert (
        report(compile_namespace(risk_pipeline(), pickled, "risk", SPEC))["risk.account_activity"][
            0
        ]
        is Role.STATE
    )


def test_run_requires_the_state_rows_and_returns_the_updates() -> None:
    state = pd.DataFrame({"account_id": ["a"], "payments": [2], "total": [90.0]})
    with session() as running:
        out = running.run(
            "risk",
            inputs={
                "account_activity": state,
                "payments": payments(("a", 20.0), ("b", 5.0)),
            },
        )
        with pytest.raises(InjectionError, match=r"missing 'account_activity'"):
            running.run("risk", inputs={"payments": payments(("a", 1.0))})
    updates = out["account_activity_updates"].set_index("account_id")
    assert updates.to_dict("index") == {
        "a": {"payments": 3, "total": 110.0},
        "b": {"payments": 1, "total": 5.0},
    }
    assert out["alerts"]["account_id"].tolist() == ["a"]


@pytest.mark.parametrize(
    ("states", "extra", "message"),
    [
        (
            {"activity": "account_activity_updates"},
            {},
            r"namespace 'risk' lists state inputs 'risk.activity'.*"
            r"candidates: 'account_activity', 'payments'",
        ),
        (
            {"limit": "account_activity_updates"},
            {},
            r"lists state inputs 'risk.limit'.*candidates: 'account_activity', 'payments'",
        ),
        (
            {"account_activity": "activity_updates"},
            {},
            r"lists state updates 'risk.activity_updates'.*"
            r"candidates: 'account_activity_updates', 'alerts', 'features'",
        ),
        (
            {"account_activity": "account_activity_updates"},
            {"inputs": ("payments", "account_activity")},
            r"namespace 'risk' lists 'account_activity' both as a state and under inputs",
        ),
        (
            {"account_activity": "alerts", "payments": "alerts"},
            {},
            r"several states the same updates 'alerts'",
        ),
    ],
)
def test_spec_errors_name_the_namespace_and_the_candidates(
    states: dict[str, str], extra: dict[str, Any], message: str
) -> None:
    with pytest.raises(SpecError, match=message):
        compiled(NamespaceSpec(namespace="risk", states=states, **extra))


def test_state_dataset_without_a_snapshot_loads_no_rows() -> None:
    loaded = StateDataset(columns=COLUMNS).load()
    assert loaded.empty and loaded.columns.tolist() == COLUMNS
    with pytest.raises(DatasetError, match=r"set filepath"):
        StateDataset(columns=COLUMNS).save(loaded)


def test_state_dataset_saves_and_loads_its_snapshot(tmp_path: Path) -> None:
    snapshot = tmp_path / "state" / "activity.jsonl"
    dataset = StateDataset(columns=COLUMNS, filepath=str(snapshot))
    assert dataset.load().columns.tolist() == COLUMNS  # no snapshot yet
    rows = pd.DataFrame({"account_id": ["a", "b"], "payments": [1, 2], "total": [1.5, 2.0]})
    dataset.save(rows)
    assert snapshot.read_text().splitlines()[0] == '{"account_id":"a","payments":1,"total":1.5}'
    pd.testing.assert_frame_equal(dataset.load(), rows)
    assert "activity.jsonl" in str(dataset)


def test_kedro_run_reads_the_state_from_the_catalog(tmp_path: Path) -> None:
    snapshot = tmp_path / "activity.jsonl"
    catalog = DataCatalog.from_config(
        {
            "risk.account_activity": {"type": STATE_TYPE, "columns": COLUMNS},
            "risk.account_activity_updates": {"type": STATE_TYPE, "filepath": str(snapshot)},
            "risk.payments": {"type": "MemoryDataset"},
        }
    )
    catalog["params:risk.limit"] = 10.0
    catalog.save("risk.payments", payments(("a", 4.0), ("a", 8.0), ("b", 1.0)))
    SequentialRunner().run(risk_pipeline(), catalog)
    saved = pd.read_json(snapshot, lines=True)
    assert saved.to_dict("records") == [
        {"account_id": "a", "payments": 2, "total": 12.0},
        {"account_id": "b", "payments": 1, "total": 1.0},
    ]


def test_every_role_has_a_style_in_the_compile_table() -> None:
    assert set(ROLE_STYLE) == set(Role)
