"""The codecs of one stream, from its ``stream.yml`` entry: the one place that turns the
configuration into :func:`kedro_stream.serde.build_codec` arguments."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from kedro_stream.config import (
    NO_REGISTRY,
    ConfigError,
    Format,
    KafkaConfig,
    Project,
    StreamConfig,
)
from kedro_stream.serde import Codec, build_codec
from kedro_stream.serde.avro import load_schema
from kedro_stream.serde.base import record_fields

if TYPE_CHECKING:
    from confluent_kafka.schema_registry import SchemaRegistryClient


@dataclass(frozen=True)
class StreamCodecs:
    """The input's codec and one per published output: built once, at start."""

    input: Codec
    outputs: dict[str, Codec]  # by output dataset name, in the order of stream.outputs


def stream_codecs(stream: StreamConfig, kafka: KafkaConfig, project: Project) -> StreamCodecs:
    """The input codec and one codec per output; relative schema paths are found by
    :meth:`Project.locate`, and all ``avro-confluent`` codecs share one registry client."""
    registry = schema_registry_for(stream, kafka)
    decoder = build_codec(
        stream.input.format,
        _path(project, stream.input.schema_path),
        topic=stream.input.topics[0],  # names the subject only: the schema id is in the value
        registry=registry,
    )
    encoders = {
        name: build_codec(
            spec.format,
            _path(project, spec.schema_path),
            topic=spec.topic,
            registry=registry,
            auto_register=spec.auto_register,
        )
        for name, spec in stream.outputs.items()
    }
    return StreamCodecs(decoder, encoders)


def check_schemas(stream: StreamConfig, project: Project) -> None:
    """Every local schema of the stream exists and parses: checked before boot, so a typo in a
    path fails in a second, naming the key, rather than after the project has loaded."""
    specs = [("input", stream.input.schema_path)]
    specs += [(f"outputs.{name}", spec.schema_path) for name, spec in stream.outputs.items()]
    for where, given in specs:
        if given is None:
            continue
        try:
            path = project.locate(given)
        except ConfigError as exc:
            raise ConfigError(f"{where}.schema: {exc}") from None
        try:
            load_schema(path)
        except ValueError as exc:
            raise ConfigError(f"{where}.schema: {exc}") from None


def input_schema_fields(stream: StreamConfig, project: Project) -> tuple[str, ...] | None:
    """The input records' fields as ``input.schema`` declares them; ``None`` without a schema,
    or with one that is not found or does not load (:func:`check_schemas` says why)."""
    try:
        path = _path(project, stream.input.schema_path)
        return None if path is None else record_fields(load_schema(path))
    except (ConfigError, ValueError):
        return None


def schema_registry_for(stream: StreamConfig, kafka: KafkaConfig) -> SchemaRegistryClient | None:
    """The registry client of a stream's ``avro-confluent`` topics, shared so that a schema is
    fetched once; ``None`` when the stream has none (the library is then not even imported)."""
    if Format.AVRO_CONFLUENT not in stream.formats():
        return None
    if kafka.schema_registry is None:
        raise ConfigError(NO_REGISTRY)
    # Imported here: the registry client library costs about 0.2 s to import, and most
    # streams have no avro-confluent topic.
    from kedro_stream.serde.confluent import registry_client

    try:
        return registry_client(kafka.schema_registry.client_properties())
    except ValueError as exc:
        raise ConfigError(f"kafka.schema_registry is invalid: {exc}") from None


def _path(project: Project, path: Path | None) -> Path | None:
    return None if path is None else project.locate(path)
