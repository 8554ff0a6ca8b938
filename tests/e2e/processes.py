"""``kedro stream`` processes started by end-to-end tests, and what their logs say."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.conftest import KEDRO

ENV = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "1"}
_STARTED: list[subprocess.Popen[str]] = []


def start(project: Path, *args: str, log: Path | None = None) -> subprocess.Popen[str]:
    """A ``kedro stream`` process; its stderr goes to ``log`` when given, to read it live."""
    process = subprocess.Popen(
        [KEDRO, "stream", *args],
        cwd=project,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=log.open("w") if log else subprocess.PIPE,
        text=True,
    )
    _STARTED.append(process)
    return process


def kill_leftovers() -> None:
    """Kill what a test started and left running (a failed assertion must not leave a
    consumer running: it would outlive the session)."""
    while _STARTED:
        process = _STARTED.pop()
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def assigned(log: Path) -> set[str]:
    """Partitions a service logged as assigned to it (``Assigned t[0], t[1]``), minus revoked."""
    owned: set[str] = set()
    for line in log.read_text().splitlines():
        for verb, change in (("Assigned ", owned.update), ("Revoked ", owned.difference_update)):
            if verb in line:
                change(p.strip() for p in line.split(verb, 1)[1].split(","))
    return owned - {"nothing"}


def finish(process: subprocess.Popen[str], timeout_s: float = 60) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=timeout_s)
    return process.returncode, out, err
