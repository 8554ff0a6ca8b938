"""``make pythons`` covers what ``requires-python`` promises, and a Python it cannot find fails
the run by name, before anything is built, instead of being skipped. Fast: no venv is built."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests import run_on_pythons
from tests.run_on_pythons import E2E, REPO, SUPPORTED, interpreter, main, others, running

try:
    import tomllib
except ImportError:  # Python 3.10: Kedro depends on tomli there
    import tomli as tomllib

MISSING = next(v for v in SUPPORTED if v != running())


@pytest.fixture
def pyenv(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A pyenv root with the running Python alone, and nothing on the PATH."""
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    return tmp_path


def install(root: Path, version: str) -> Path:
    """A pyenv install of ``version``: the running interpreter, under that name."""
    python = root / "versions" / version / "bin" / f"python{version.rsplit('.', 1)[0]}"
    python.parent.mkdir(parents=True)
    python.symlink_to(sys.executable)
    return python


def test_the_oldest_python_is_requires_pythons_floor_and_ruffs_target() -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert pyproject["project"]["requires-python"] == f">={SUPPORTED[0]}"
    assert pyproject["tool"]["ruff"]["target-version"] == "py" + SUPPORTED[0].replace(".", "")


def test_the_classifiers_name_the_supported_pythons() -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    prefix = "Programming Language :: Python :: "
    named = [c.removeprefix(prefix) for c in pyproject["project"]["classifiers"] if prefix in c]
    assert named == list(SUPPORTED)


def test_every_supported_python_but_the_running_one_is_checked() -> None:
    assert running() in SUPPORTED
    assert others() == [v for v in SUPPORTED if v != running()]


def test_the_end_to_end_stream_exists() -> None:
    path, name = E2E.split("::")
    assert f"def {name}(" in (REPO / path).read_text()


def test_a_missing_python_fails_by_name_before_anything_runs(
    pyenv: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    install(pyenv, f"{running()}.0")
    checked: list[str] = []
    monkeypatch.setattr(run_on_pythons.Run, "check", lambda run: checked.append(run.version))

    assert main([running(), MISSING]) == 2

    err = capsys.readouterr().err
    assert f"Python {MISSING} not found" in err
    assert f"pyenv install {MISSING}" in err
    assert checked == []


def test_a_pyenv_install_is_found_newest_patch_first(pyenv: Path) -> None:
    install(pyenv, f"{running()}.9")
    newest = install(pyenv, f"{running()}.10")
    assert interpreter(running()) == newest


def test_a_python_that_answers_another_version_is_not_it(pyenv: Path) -> None:
    install(pyenv, f"{MISSING}.0")  # named MISSING, but the running Python inside
    assert interpreter(MISSING) is None


def test_a_shim_that_does_not_run_is_not_the_python(pyenv: Path) -> None:
    """pyenv's shim of a version installed but not selected exits with an error."""
    shim = pyenv / "bin" / f"python{MISSING}"
    shim.parent.mkdir()
    shim.write_text(f"#!/bin/sh\necho 'pyenv: python{MISSING}: command not found' >&2\nexit 127\n")
    shim.chmod(0o755)
    assert run_on_pythons.candidates(MISSING) == [shim]
    assert interpreter(MISSING) is None


def test_a_python_that_is_not_supported_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["3.9"]) == 2
    assert "Python 3.9 is not one of the supported 3.10, 3.11" in capsys.readouterr().err
