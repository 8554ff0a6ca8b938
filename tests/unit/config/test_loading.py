"""Reading stream.yml through the project's own Kedro config loader: environments apply, and a
command outside any project gets the defaults."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from kedro_stream.config import (
    DEFAULT_BOOTSTRAP_SERVERS,
    ConfigError,
    NoStreamFile,
    Project,
    command_stream_file,
    read_stream_file,
)


def _write(project: Path, env: str, config: dict) -> None:
    (project / "conf" / env).mkdir(parents=True, exist_ok=True)
    (project / "conf" / env / "stream.yml").write_text(yaml.safe_dump(config))


def test_an_environment_overrides_base(mini_project: Path) -> None:
    _write(mini_project, "base", {"kafka": {"bootstrap_servers": "base:9092"}})
    _write(mini_project, "prod", {"kafka": {"bootstrap_servers": "prod:9092"}})

    assert read_stream_file(Project(mini_project), None).kafka.bootstrap_servers == "base:9092"
    assert read_stream_file(Project(mini_project), "prod").kafka.bootstrap_servers == "prod:9092"


def test_a_missing_environment_folder_is_named(mini_project: Path) -> None:
    with pytest.raises(ConfigError, match=r"^Environment 'nope' has no folder conf/nope"):
        read_stream_file(Project(mini_project), "nope")


def test_without_stream_yml_a_command_gets_the_defaults(mini_project: Path) -> None:
    with pytest.raises(NoStreamFile):
        read_stream_file(Project(mini_project), None)
    assert command_stream_file(Project(mini_project), None, None).kafka.bootstrap_servers == (
        DEFAULT_BOOTSTRAP_SERVERS
    )
    assert command_stream_file(None, None, "h:1").kafka.bootstrap_servers == "h:1"
