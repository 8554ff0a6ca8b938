"""``kedro-stream``: every ``kedro stream`` command, the project ones imported only when asked
for, so that ``broker`` never imports Kedro."""

from __future__ import annotations

import subprocess
import sys

from click.testing import CliRunner

from kedro_stream.__main__ import PROJECT_COMMANDS, main
from kedro_stream.cli import stream


def test_it_offers_every_command_of_kedro_stream() -> None:
    assert set(PROJECT_COMMANDS) | {"broker"} == set(stream.commands)


def test_a_project_command_takes_the_package_flags() -> None:
    done = CliRunner().invoke(main, ["consume", "--help"])

    assert done.exit_code == 0, done.output
    assert "--package" in done.output
    assert "--conf-source" in done.output


def test_asking_for_broker_imports_no_kedro() -> None:
    script = (
        "import sys\n"
        "from kedro_stream.__main__ import main\n"
        "main(['broker', '--help'], standalone_mode=False)\n"
        "loaded = sorted(m for m in sys.modules if m == 'kedro' or m.startswith('kedro.'))\n"
        "assert not loaded, loaded\n"
    )

    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )

    assert done.returncode == 0, done.stderr
