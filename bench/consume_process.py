"""``kedro stream consume`` as a child process, watched through its /metrics: the benchmarks'
shared way of starting, following and stopping the service as a user runs it."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import IO

KEDRO = str(Path(sys.executable).with_name("kedro"))
_CONSUMED = re.compile(r"^kedro_stream_records_consumed_total\{[^}]*\} (\S+)$", re.MULTILINE)
_LAST_COMMIT = re.compile(
    r"^kedro_stream_last_commit_timestamp_seconds\{[^}]*\} (\S+)$", re.MULTILINE
)


def start(
    options: list[str], *, cwd: Path, stderr: IO[str] | int = subprocess.DEVNULL
) -> tuple[subprocess.Popen[str], str]:
    """Start ``kedro stream consume OPTIONS --metrics-port 0``; returns it and its /metrics URL."""
    command = [KEDRO, "stream", "consume", *options, "--metrics-port", "0"]
    service = subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=stderr, text=True)
    assert service.stdout is not None
    for line in service.stdout:
        if line.startswith("metrics="):
            return service, line.strip().removeprefix("metrics=")
    raise SystemExit(f"kedro stream consume exited ({service.wait()}) before serving /metrics")


def consumed(metrics_url: str) -> int:
    """Records the service has committed, summed over its input topics."""
    return progress(metrics_url)[0]


def progress(metrics_url: str) -> tuple[int, float]:
    """Records committed, and the wall-clock time of the last commit (0 before the first)."""
    with urllib.request.urlopen(metrics_url, timeout=5) as response:
        text = response.read().decode()
    last = _LAST_COMMIT.findall(text)
    return int(sum(float(v) for v in _CONSUMED.findall(text))), float(last[0]) if last else 0.0


def stop(service: subprocess.Popen[str]) -> None:
    """SIGTERM (the service finishes its batch and commits), then SIGKILL after 30 s."""
    service.send_signal(signal.SIGTERM)
    try:
        service.wait(timeout=30)
    except subprocess.TimeoutExpired:
        service.kill()
