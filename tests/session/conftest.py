from __future__ import annotations

import json
import pickle
import shutil
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

MINI_PROJECT = Path(__file__).parent / "mini_project"


@pytest.fixture
def mini_project(tmp_path: Path) -> Iterator[Path]:
    """A fresh copy of the mini project with its data files written."""
    project = tmp_path / "mini_project"
    shutil.copytree(MINI_PROJECT, project)
    data = project / "data"
    (data / "rates").mkdir(parents=True)
    pd.DataFrame({"kind": ["a", "b"], "weight": [1.0, 3.0]}).to_csv(
        data / "lookup.csv", index=False
    )
    pd.DataFrame({"id": [1], "kind": ["a"], "amount": [1.0]}).to_csv(
        data / "batch.csv", index=False
    )
    (data / "model.pkl").write_bytes(pickle.dumps({"slope": 2.0, "intercept": 1.0}))
    (data / "rates" / "2026-01-01.json").write_text(json.dumps({"EUR": 1.0, "USD": 0.5}))
    (data / "rates" / "2026-02-01.json").write_text(json.dumps({"EUR": 2.0, "USD": 1.0}))
    from mini_project import hooks

    yield project
    hooks.CALLS.clear()


@pytest.fixture(autouse=True)
def _mini_project_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(MINI_PROJECT / "src"))
