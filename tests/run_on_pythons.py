"""The unit tests and one end-to-end stream on each Python that ``requires-python`` admits
besides the one running this script (the main venv's), each in a venv of its own
(``.venv-3.10`` ...) with ``.[dev,example]`` installed from the package index as a user would.

The suite runs on one Python; what differs between versions (the standard library's parsers,
the wheels a version gets: pandas 2 on 3.10, pandas 3 from 3.11) only shows on the others.
A Python that is not found fails the run, by name, before anything is built: a version never
tried must not look like one that passed.

Usage: ``python tests/run_on_pythons.py [3.10 3.12 ...]`` (``make pythons``); exits 1 when a
step fails on any Python, 2 when a Python is not found or not supported.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# Oldest first; the oldest is requires-python's floor and ruff's target-version
# (tests/test_run_on_pythons.py holds both).
SUPPORTED = ("3.10", "3.11", "3.12", "3.13")
# Records in through `kedro stream produce`, the example's stateful scoring stream through
# `kedro stream consume` on the embedded broker, every output reconciled (~20 s).
E2E = "tests/e2e/test_stream_cli.py::test_broker_produce_consume_as_a_user"
_VERSION = "import sys; print('%d.%d' % sys.version_info[:2])"


def running() -> str:
    """The Python running this script: the main venv's, which ``make test`` covers."""
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def others() -> list[str]:
    """Every supported Python but the running one."""
    return [version for version in SUPPORTED if version != running()]


def version_of(python: Path | str) -> str | None:
    """``3.X`` of an interpreter, or None when it does not run (a pyenv shim of a version
    that is installed but not selected answers with an error)."""
    try:
        done = subprocess.run(
            [str(python), "-c", _VERSION], capture_output=True, text=True, timeout=60, check=False
        )
    except OSError:
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def _patch(path: Path) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", path.parents[1].name))


def candidates(version: str) -> list[Path]:
    """Where ``version`` may be: pyenv's installs (newest patch first), then ``python3.X`` on
    the PATH."""
    root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    found = sorted(root.glob(f"versions/{version}.*/bin/python{version}"), key=_patch)[::-1]
    on_path = shutil.which(f"python{version}")
    return [*found, *([Path(on_path)] if on_path else [])]


def interpreter(version: str) -> Path | None:
    """The first candidate that runs and is ``version``."""
    return next((c for c in candidates(version) if version_of(c) == version), None)


@dataclass
class Run:
    """One Python's steps, timed, and the first that failed."""

    version: str
    python: Path
    seconds: dict[str, float] = field(default_factory=dict)
    failed: str | None = None

    @property
    def venv(self) -> Path:
        """Its venv, beside the main one."""
        return REPO / f".venv-{self.version}"

    def say(self, text: str) -> None:
        """Progress: which Python, which step."""
        print(f"[pythons] Python {self.version}: {text}", flush=True)

    def step(self, name: str, *command: str | Path) -> bool:
        """Runs a step unless one failed already; its output goes straight through."""
        if self.failed:
            return False
        self.say(name)
        start = time.monotonic()
        env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "1"}
        code = subprocess.run([str(c) for c in command], cwd=REPO, env=env, check=False).returncode
        self.seconds[name] = time.monotonic() - start
        if code != 0:
            self.failed = name
            self.say(f"FAILED: {name} (exit {code})")
        return code == 0

    def check(self) -> None:
        """venv, install (again when pyproject.toml changed), unit tests, the e2e stream."""
        python = self.venv / "bin" / "python"
        if version_of(python) != self.version:
            self.step(f"venv {self.venv.name}", self.python, "-m", "venv", "--clear", self.venv)
        stamp = self.venv / ".installed"
        pyproject = REPO / "pyproject.toml"
        if not stamp.exists() or stamp.stat().st_mtime < pyproject.stat().st_mtime:
            pip = (python, "-m", "pip", "install", "--quiet")
            if self.step("upgrade pip", *pip, "--upgrade", "pip") and self.step(
                "install .[dev,example]", *pip, "-e", ".[dev,example]"
            ):
                stamp.touch()
        pytest = (python, "-m", "pytest", "-q", "-p", "no:cacheprovider")
        self.step("unit tests (tests/unit)", *pytest, "tests/unit")
        # The example project: batch == stream rests on pandas reading its files alike.
        self.step("the example project (tests/example)", *pytest, "tests/example")
        self.step(f"end-to-end stream ({E2E})", *pytest, E2E)

    def summary(self) -> str:
        """One line: the outcome and the time of each step."""
        steps = ", ".join(f"{name.split(' (')[0]} {s:.0f} s" for name, s in self.seconds.items())
        outcome = f"FAILED at {self.failed}" if self.failed else "passed"
        return f"Python {self.version} {outcome} in {sum(self.seconds.values()):.0f} s ({steps})"


def resolve(versions: Sequence[str]) -> tuple[dict[str, Path], list[str]]:
    """Each version's interpreter, and what is wrong with the rest (unsupported, not found)."""
    found: dict[str, Path] = {}
    problems: list[str] = []
    for version in versions:
        if version not in SUPPORTED:
            problems.append(f"Python {version} is not one of the supported {', '.join(SUPPORTED)}")
        elif (python := interpreter(version)) is None:
            problems.append(
                f"Python {version} not found (looked for pyenv's versions/{version}.*/bin/"
                f"python{version} and python{version} on the PATH): install it, e.g. "
                f"`pyenv install {version}`"
            )
        else:
            found[version] = python
    return found, problems


def main(argv: Sequence[str] | None = None) -> int:
    """Resolves every interpreter first, then checks each Python in turn; all are checked even
    when one fails, so one run names every broken version."""
    versions = list(argv if argv is not None else sys.argv[1:]) or others()
    found, problems = resolve(versions)
    for problem in problems:
        print(f"[pythons] ERROR: {problem}", file=sys.stderr, flush=True)
    if problems:
        return 2
    runs = []
    for version, python in found.items():
        run = Run(version, python)
        run.say(f"{python}")
        run.check()
        runs.append(run)
    for run in runs:
        print(f"[pythons] {run.summary()}", flush=True)
    return 1 if any(run.failed for run in runs) else 0


if __name__ == "__main__":
    raise SystemExit(main())
