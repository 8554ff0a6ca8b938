"""What a `kedro stream` command does to its process, whatever the project's logging config."""

from __future__ import annotations

import io
import logging
import sys
import warnings
from collections.abc import Iterator

import pytest
from kedro.framework.cli.hooks import get_cli_hook_manager
from rich.console import Console
from rich.logging import RichHandler

from kedro_stream.process_setup import prepare_command_process
from kedro_stream.telemetry import TELEMETRY_PLUGIN


@pytest.fixture
def project_logging() -> Iterator[tuple[logging.Handler, RichHandler]]:
    """Kedro's default shape: handlers on stdout, ``kedro_stream`` at no level of its own."""
    root, own = logging.getLogger(), logging.getLogger("kedro_stream")
    plain = logging.StreamHandler(sys.stdout)
    rich = RichHandler(console=Console(file=None))  # rich writes to sys.stdout by default
    saved = (root.handlers[:], own.level, warnings.filters[:])
    root.handlers[:] = [plain, rich]
    own.setLevel(logging.NOTSET)
    try:
        yield plain, rich
    finally:
        root.handlers[:], level, warnings.filters[:] = saved
        own.setLevel(level)


def test_logs_move_to_stderr_and_our_progress_shows(
    project_logging: tuple[logging.StreamHandler[io.TextIOBase], RichHandler],
) -> None:
    plain, rich = project_logging
    assert rich.console.file is sys.stdout
    prepare_command_process()
    assert plain.stream is sys.stderr
    assert rich.console.file is sys.stderr
    assert logging.getLogger("kedro_stream.service.loop").isEnabledFor(logging.INFO)


def test_a_level_the_project_sets_is_kept(project_logging: object) -> None:
    logging.getLogger("kedro_stream").setLevel(logging.ERROR)
    prepare_command_process()
    assert not logging.getLogger("kedro_stream").isEnabledFor(logging.WARNING)


def test_the_resolver_deprecation_notice_is_silenced(project_logging: object) -> None:
    prepare_command_process()
    with warnings.catch_warnings(record=True) as caught:
        notice = "register_new_resolver() is deprecated and will be removed"
        warnings.warn(notice, UserWarning, stacklevel=1)
        warnings.warn("something else", UserWarning, stacklevel=1)
    assert [str(w.message) for w in caught] == ["something else"]


def test_telemetry_never_runs_after_a_command(project_logging: object) -> None:
    manager = get_cli_hook_manager()
    telemetry = [p for p, d in manager.list_plugin_distinfo() if d.project_name == TELEMETRY_PLUGIN]
    assert telemetry, "kedro depends on kedro-telemetry: its CLI hook should have loaded"
    prepare_command_process()
    prepare_command_process()  # twice: a second command in the same process
    assert not any(manager.is_registered(plugin) for plugin in telemetry)
