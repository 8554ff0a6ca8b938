"""``kedro stream --help`` and every command's help read exactly as the golden files: what users
see changes only on purpose (write the new help into the file and read its diff), never as a
side effect of a refactoring.

The help goes to stdout; the ``stream`` group configures logging, which may write a line to
stderr, so only stdout is compared. The width is fixed twice (``terminal_width`` and
``COLUMNS``), as when the files were written, so the terminal running the tests does not matter.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from kedro_stream.cli import commands
from kedro_stream.cli.compile import compile_command
from kedro_stream.cli.consume import consume_command
from kedro_stream.cli.lag import lag_command
from kedro_stream.cli.produce import produce_command
from kedro_stream.cli.reset import reset_command
from kedro_stream.devbroker.cli import broker

GOLDEN = Path(__file__).parent / "help"
COMMANDS = ["compile", "consume", "produce", "broker", "lag", "reset"]


@pytest.fixture(autouse=True)
def _fixed_width(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "100")


def help_text(*args: str) -> str:
    result = CliRunner().invoke(
        commands, ["stream", *args, "--help"], prog_name="kedro", terminal_width=100
    )
    assert result.exit_code == 0, result.output
    return result.stdout


def test_the_stream_group_help_is_unchanged() -> None:
    assert help_text() == (GOLDEN / "stream.txt").read_text(encoding="utf-8")


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_help_is_unchanged(name: str) -> None:
    assert help_text(name) == (GOLDEN / f"{name}.txt").read_text(encoding="utf-8")


def test_the_help_does_not_depend_on_the_terminal_width(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "40")
    assert help_text("reset") == (GOLDEN / "reset.txt").read_text(encoding="utf-8")


def test_there_is_a_golden_file_for_each_command_and_the_group() -> None:
    assert {path.stem for path in GOLDEN.glob("*.txt")} == {"stream", *COMMANDS}


def test_the_stream_group_holds_each_command_module_s_command() -> None:
    assert commands.commands["stream"].commands == {
        "compile": compile_command,
        "consume": consume_command,
        "produce": produce_command,
        "broker": broker,
        "lag": lag_command,
        "reset": reset_command,
    }
