"""A stream.yml entry, and parsing a file, shared by the config tests."""

from __future__ import annotations

from typing import Any

from kedro_stream.config import StreamFile, parse_stream_file

STREAM: dict[str, Any] = {
    "namespace": "scoring",
    "group_id": "g",
    "input": {"topics": ["payments"], "dataset": "payments"},
    "outputs": {"scores": {"topic": "scores"}},
}


def parse(raw: dict[str, Any], credentials: dict[str, Any] | None = None) -> StreamFile:
    """``raw`` as stream.yml, with ``credentials`` as credentials.yml."""
    return parse_stream_file(raw, credentials or {})
