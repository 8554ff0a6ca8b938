"""The shared options: outside a project a command gets no project (and runs on stream.yml's
defaults), inside one the project's, with --package an installed one; consume and compile
say how to name one when there is none."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import click
import pytest

from kedro_stream.cli import options
from kedro_stream.config import ConfigError, Project


def test_outside_a_project_there_is_no_project() -> None:
    assert options.project_of(None) is None


def test_inside_a_project_it_is_the_project_s(tmp_path: Path) -> None:
    metadata = SimpleNamespace(project_path=tmp_path, package_name="mini_project")

    assert options.project_of(metadata) == Project(tmp_path.resolve())  # type: ignore[arg-type]


def test_a_package_is_run_from_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    found = options.project_of(
        None, package="shop", conf_source=Path("conf.tar.gz"), credentials=Path("c.yml")
    )

    assert found == Project(
        tmp_path.resolve(),
        package="shop",
        conf_source=tmp_path.resolve() / "conf.tar.gz",
        credentials=tmp_path.resolve() / "c.yml",
    )


def test_a_conf_source_without_any_project_is_a_usage_error() -> None:
    with pytest.raises(click.UsageError, match=r"--conf-source and --credentials need a project"):
        options.project_of(None, conf_source=Path("conf"))


def test_consume_without_a_project_says_how_to_name_one() -> None:
    with pytest.raises(ConfigError) as error:
        options.required(None, "consume")

    assert "kedro-stream consume --package NAME --conf-source conf-NAME.tar.gz" in str(error.value)
    assert options.required(Project(Path(".")), "consume") == Project(Path("."))
