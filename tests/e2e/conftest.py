from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
KEDRO = str(Path(sys.executable).with_name("kedro"))


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


@pytest.fixture(scope="session")
def project_after_kedro_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the example project after `kedro run`, so tests never touch the repo's data."""
    project = tmp_path_factory.mktemp("payment-fraud")
    for name in ("pyproject.toml", ".telemetry"):
        shutil.copy(REPO / name, project / name)
    shutil.copytree(REPO / "conf", project / "conf")
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(
        REPO / "src" / "payment_fraud", project / "src" / "payment_fraud", ignore=ignore
    )
    (project / "conf" / "local").mkdir(exist_ok=True)
    kedro(project, "run")
    return project
