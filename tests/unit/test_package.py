"""The API package: its names come from ``kedro_stream.session`` on first use, so importing
``kedro_stream`` (as the development broker does) never imports Kedro; its version is the one
``kedro_stream.version`` holds and the installed distribution reports."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys

import pytest

import kedro_stream
import kedro_stream.session
import kedro_stream.version


@pytest.mark.parametrize("name", ["boot_project", "boot_package", "StreamSession", "NamespaceSpec"])
def test_the_api_names_are_the_session_s(name: str) -> None:
    assert getattr(kedro_stream, name) is getattr(kedro_stream.session, name)
    assert name in kedro_stream.__all__


def test_from_import_finds_them_too() -> None:
    from kedro_stream import NamespaceSpec, boot_project

    assert boot_project is kedro_stream.session.boot_project
    assert NamespaceSpec is kedro_stream.session.NamespaceSpec


def test_an_unknown_attribute_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match=r"module 'kedro_stream' has no attribute 'nope'"):
        kedro_stream.nope  # noqa: B018
    assert not hasattr(kedro_stream, "Role")  # in the session, not in the API


def test_importing_the_package_and_the_broker_command_does_not_import_kedro() -> None:
    script = (
        "import sys, kedro_stream, kedro_stream.devbroker.cli; "
        "loaded = sorted(m for m in sys.modules if m == 'kedro' or m.startswith('kedro.')); "
        "assert not loaded, loaded"
    )

    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )

    assert done.returncode == 0, done.stderr


def test_the_version_is_the_version_module_s_and_the_distribution_s() -> None:
    assert kedro_stream.__version__ == kedro_stream.version.__version__
    assert kedro_stream.__version__ == importlib.metadata.version("kedro-stream")
