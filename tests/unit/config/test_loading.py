"""Reading stream.yml through Kedro: a missing environment is named."""

from __future__ import annotations

from pathlib import Path

import pytest

from kedro_stream.config import (
    ConfigError,
    check_environment,
)


def test_an_environment_without_its_folder_is_named(tmp_path: Path) -> None:
    (tmp_path / "base").mkdir()
    (tmp_path / "local").mkdir()
    check_environment(tmp_path, "local")
    check_environment(tmp_path, None)
    with pytest.raises(ConfigError) as error:
        check_environment(tmp_path, "prod")
    assert str(error.value).startswith(f"Environment 'prod' has no folder {tmp_path.name}/prod")
    assert str(error.value).endswith("environments: 'base', 'local'")
