"""``boot_package`` on a packaged Kedro project: the mini project built as a wheel, installed in
a new virtualenv, booted by its package name from a working directory that is not the project.

The new virtualenv gets only the mini project's wheel; kedro, kedro_stream, pandas... come from
the running environment through a ``.pth`` file, so nothing is downloaded to install it. Building
the wheel downloads nothing either where this environment's setuptools can build one.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import site
import subprocess
import sys
import venv
from pathlib import Path

import pytest

import kedro_stream

pytestmark = pytest.mark.packaging

SCRIPT = """
import json, sys, sysconfig

import pandas as pd

from kedro_stream import boot_package

batch = pd.DataFrame({"id": [0, 1], "kind": "b", "amount": [0.5, 4.0]})
with boot_package("mini_project", project_path=sys.argv[1], namespaces=["ns"]) as session:
    out = session.run("ns", inputs={"batch": batch})

import kedro_stream
import mini_project
from mini_project.hooks import CALLS

print(json.dumps({
    "summary": out["summary"],
    "checked": out["checked"].to_dict(orient="list"),
    "enriched": out["enriched"].to_dict(orient="list"),
    "hooks": sorted({name for name, _ in CALLS}),
    "mini_project": mini_project.__file__,
    "kedro_stream": kedro_stream.__file__,
    "site_packages": sysconfig.get_paths()["purelib"],
}))
"""


def _can_build_offline() -> bool:
    """Whether this environment has a setuptools that builds wheels by itself (70.1+, or with
    the ``wheel`` package): then pip need not download one into an isolated build env."""
    try:
        version = importlib.metadata.version("setuptools")
    except importlib.metadata.PackageNotFoundError:
        return False
    major, minor = (int(part) for part in version.split(".")[:2])
    return (major, minor) >= (70, 1) or importlib.util.find_spec("wheel") is not None


def _run(*command: str | Path, **kwargs: object) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(c) for c in command],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        **kwargs,
    )
    assert done.returncode == 0, f"{command}:\n{done.stdout}\n{done.stderr}"
    return done


def _wheel(project: Path, into: Path) -> Path:
    isolation = ["--no-build-isolation"] if _can_build_offline() else []
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    _run(*pip, "wheel", "--no-deps", "--quiet", *isolation, "--wheel-dir", into, project)
    (wheel,) = into.glob("mini_project-*.whl")
    return wheel


def _virtualenv(path: Path) -> Path:
    """A new virtualenv that also sees kedro_stream and the running environment's packages,
    after its own site-packages."""
    venv.EnvBuilder(with_pip=True).create(path)
    python = path / "bin" / "python"
    own = _run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])")
    borrowed = [str(Path(kedro_stream.__file__).parents[1]), *site.getsitepackages()]
    (Path(own.stdout.strip()) / "borrowed.pth").write_text("\n".join(borrowed) + "\n")
    return python


def test_boot_package_runs_an_installed_project(mini_project: Path, tmp_path: Path) -> None:
    wheel = _wheel(mini_project, tmp_path / "dist")
    python = _virtualenv(tmp_path / "venv")
    _run(python, "-m", "pip", "install", "--no-deps", "--quiet", "--no-index", wheel)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}}

    done = _run(python, "-c", SCRIPT, mini_project, cwd=elsewhere, env=env)

    result = json.loads(done.stdout.strip().splitlines()[-1])
    # value = amount * weight(b=3) * factor(2); prediction = value * 2 + 1; threshold 10
    assert result["summary"] == {"rows": 2, "high": 1}
    assert result["checked"] == {"id": [0, 1], "prediction": [7.0, 49.0]}
    assert result["enriched"] == {
        "id": [0, 1],
        "kind": ["b", "b"],
        "amount": [0.5, 4.0],
        "weight": [3.0, 3.0],
        "value": [3.0, 24.0],
    }
    # The package's settings were configured: its hooks saw the run.
    assert {"before_pipeline_run", "before_node_run", "after_node_run"} <= set(result["hooks"])
    # The project came from the wheel in the new virtualenv, not from a source tree; the plugin
    # is the one under test.
    site_packages = Path(result["site_packages"])
    assert Path(result["mini_project"]).parent == site_packages / "mini_project"
    assert Path(result["kedro_stream"]) == Path(kedro_stream.__file__)
