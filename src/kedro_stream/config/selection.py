"""Choosing the stream a command runs, and applying its command-line overrides."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from kedro_stream.config.errors import ConfigError, described
from kedro_stream.config.models import StreamConfig, StreamFile, default_changelog_topic


def select_stream(file: StreamFile, *, topic: str | None, namespace: str | None) -> StreamConfig:
    """The stream that reads ``topic`` (and runs ``namespace`` when both are given)."""
    readers = file.streams if topic is None else file.readers(topic)
    candidates = [
        (name, s) for name, s in readers.items() if namespace is None or s.namespace == namespace
    ]
    if len(candidates) == 1:
        return candidates[0][1]
    described = (
        ", ".join(
            f"{n} (topics {s.input.topics}, namespace {s.namespace!r})"
            for n, s in file.streams.items()
        )
        or "none"
    )
    if not candidates:
        wanted = " and ".join(
            part
            for part in (
                f"reads topic {topic!r}" if topic is not None else "",
                f"runs namespace {namespace!r}" if namespace is not None else "",
            )
            if part
        )
        raise ConfigError(f"No stream in stream.yml {wanted}; streams: {described}.")
    raise ConfigError(
        f"Several streams read topic {topic!r}; name the namespace with --namespace. "
        f"Streams: {described}."
    )


def apply_overrides(stream: StreamConfig, overrides: Mapping[str, Any]) -> StreamConfig:
    """Apply CLI flags (``None`` means not given) and validate the result again."""
    data = stream.model_dump(by_alias=True)
    for name, spec in data["state"].items():
        # A default changelog follows the group: another --group-id is another deployment,
        # whose state must not mix with this one's.
        if spec["changelog_topic"] == default_changelog_topic(stream.group_id, name):
            spec["changelog_topic"] = ""
    for key, value in overrides.items():
        if value is None:
            continue
        target = data
        *parents, leaf = key.split(".")
        for parent in parents:
            target = target[parent]
        target[leaf] = value
    try:
        return StreamConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"Invalid option: {described(exc, StreamConfig)}") from None
