"""Interim: the codecs of one stream, built from its config."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kedro_stream.config import KafkaConfig, StreamConfig
from kedro_stream.serde import Codec, build_codec, schema_registry_for


@dataclass(frozen=True)
class StreamCodecs:
    input: Codec
    outputs: dict[str, Codec]


def _path(project_path: Path, path: Path | None) -> Path | None:
    return None if path is None else (path if path.is_absolute() else project_path / path)


def stream_codecs(stream: StreamConfig, kafka: KafkaConfig, project_path: Path) -> StreamCodecs:
    registry = schema_registry_for(stream, kafka)
    return StreamCodecs(
        build_codec(
            stream.input.format,
            _path(project_path, stream.input.schema_path),
            topic=stream.input.topics[0],
            registry=registry,
        ),
        {
            name: build_codec(
                spec.format,
                _path(project_path, spec.schema_path),
                topic=spec.topic,
                registry=registry,
                auto_register=spec.auto_register,
            )
            for name, spec in stream.outputs.items()
        },
    )
