"""The shared options: a command run outside a project gets no project path (and runs on
stream.yml's defaults), inside one it gets the project's."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from kedro_stream.cli import options


def test_outside_a_project_there_is_no_project_path() -> None:
    assert options.project_path(None) is None


def test_inside_a_project_the_path_is_the_project_s(tmp_path: Path) -> None:
    metadata = SimpleNamespace(project_path=tmp_path, package_name="mini_project")

    assert options.project_path(metadata) == tmp_path  # type: ignore[arg-type]
