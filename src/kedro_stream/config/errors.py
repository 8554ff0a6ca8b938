"""Errors of ``stream.yml``, and pydantic's validation errors in a user's words."""

from __future__ import annotations

from pydantic import ValidationError

from kedro_stream.errors import KedroStreamError


class ConfigError(KedroStreamError):
    """``stream.yml`` (with CLI overrides) does not describe a runnable stream."""


class NoStreamFile(ConfigError):
    """The environment has no ``stream.yml``: only the Python API can be used."""


def described(error: ValidationError) -> str:
    """Every problem pydantic found, ``key.path: message``, on one line."""
    lines = []
    for item in error.errors():
        where = ".".join(str(p) for p in item["loc"]) or "(top level)"
        lines.append(f"{where}: {item['msg']}")
    return "; ".join(lines)
