from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

pytest_plugins = ["kedro_stream.testing.pytest_plugin"]

REPO = Path(__file__).resolve().parents[1]
KEDRO = str(Path(sys.executable).with_name("kedro"))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--broker-tests-only",
        action="store_true",
        help="Deselect the tests that never use the session's broker (the kafka_broker "
        "fixture): for a second pass of the integration tests against another broker, where "
        "they would only run again unchanged.",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.getoption("--broker-tests-only"):
        return
    uses = [item for item in items if "kafka_broker" in getattr(item, "fixturenames", ())]
    config.hook.pytest_deselected(items=[item for item in items if item not in uses])
    items[:] = uses


def run_kedro(project: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run the ``kedro`` command in ``project`` as a user would."""
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "1", "COLUMNS": "200"}
    return subprocess.run(
        [KEDRO, *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def kedro(project: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``run_kedro`` that fails the test, with the command's output, unless it succeeded."""
    done = run_kedro(project, *args, timeout=timeout)
    assert done.returncode == 0, f"kedro {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done


def copy_project(source: Path, target: Path, *, with_data: bool = False) -> Path:
    """The example project's files (code, conf, schemas) under ``target``."""
    target.mkdir(parents=True, exist_ok=True)
    for name in ("pyproject.toml", ".telemetry"):
        shutil.copy(source / name, target / name)
    ignore = shutil.ignore_patterns("__pycache__")
    for folder in ("conf", "schemas", "src/payment_fraud") + (("data",) if with_data else ()):
        shutil.copytree(source / folder, target / folder, ignore=ignore, dirs_exist_ok=True)
    (target / "conf" / "local").mkdir(exist_ok=True)
    return target


@pytest.fixture(scope="session")
def project_after_kedro_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the example project after `kedro run`, so tests never touch the repo's data."""
    project = copy_project(REPO, tmp_path_factory.mktemp("payment-fraud"))
    kedro(project, "run")
    return project


@pytest.fixture
def stream_project(project_after_kedro_run: Path, tmp_path: Path) -> Path:
    """A fresh copy of the trained example project, for a test to edit its stream.yml."""
    return copy_project(project_after_kedro_run, tmp_path / "project", with_data=True)


MINI_PROJECT = Path(__file__).parent / "mini_project"


@pytest.fixture
def mini_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh copy of the mini project (every dataset role) with its data files written."""
    monkeypatch.syspath_prepend(str(MINI_PROJECT / "src"))
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
