"""The short soak: ``bench/soak.py`` on 400 000 records must keep the service's resident memory
within ±10 % of its median once warm, over at least 5 steady windows, and grow by less than 10 %
from the first of them to the last (the full run streams 1 000 000: ``make soak``)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e
RECORDS = 400_000
SOAK = Path(__file__).resolve().parents[2] / "bench" / "soak.py"


def test_short_soak_keeps_memory_flat(
    project_after_kedro_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "service.log"
    command = [sys.executable, str(SOAK), "--project", str(project_after_kedro_run)]
    command += ["--records", str(RECORDS), "--window-s", "1", "--log", str(log), "--json"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    with capsys.disabled():
        sys.stdout.write("\n" + done.stdout)
    last = (done.stdout.strip().splitlines() or [""])[-1]
    assert last.startswith("{"), f"no summary; stderr:\n{done.stderr[-3000:]}"
    summary = json.loads(last)
    assert summary["records"] == RECORDS
    assert summary["steady_windows"] >= 5, summary
    assert summary["rss_within_band"], summary
    assert done.returncode == 0, done.stderr[-3000:]
