"""Format name → codec: the one table of the formats a topic can use.

Keyed by the format's name as written in ``stream.yml`` (``kedro_stream.config.Format`` is a
``str`` enum whose values are these names), so that serde does not import the configuration.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING

from kedro_stream.errors import choices
from kedro_stream.serde.avro import AvroCodec, load_schema
from kedro_stream.serde.base import Codec
from kedro_stream.serde.json import JsonCodec
from kedro_stream.serde.plain import BytesCodec, StringCodec

if TYPE_CHECKING:
    from confluent_kafka.schema_registry import SchemaRegistryClient

# schema path, topic, registry client, auto-register → the codec of one topic
_Factory = Callable[[Path | None, str | None, "SchemaRegistryClient | None", bool], Codec]


def _json(schema_path: Path | None, *_: object) -> Codec:
    return JsonCodec(load_schema(schema_path) if schema_path is not None else None)


def _avro(schema_path: Path | None, *_: object) -> Codec:
    if schema_path is None:
        raise ValueError("format avro needs a schema")
    return AvroCodec(load_schema(schema_path))


def _avro_confluent(
    schema_path: Path | None,
    topic: str | None,
    registry: SchemaRegistryClient | None,
    auto_register: bool,
) -> Codec:
    if topic is None or registry is None:
        raise ValueError("format avro-confluent needs the topic and a schema registry client")
    # Imported here, not at the top: the registry client library costs about 0.2 s to import
    # and only avro-confluent topics need it. (confluent.py imports base and avro, never this
    # module, so a top-level import would not be a cycle either.)
    from kedro_stream.serde.confluent import ConfluentAvroCodec

    return ConfluentAvroCodec(registry, topic, schema_path, auto_register=auto_register)


def _string(*_: object) -> Codec:
    return StringCodec()


def _bytes(*_: object) -> Codec:
    return BytesCodec()


CODECS: dict[str, _Factory] = {
    "json": _json,
    "avro": _avro,  # schemaless Avro body against a local .avsc
    "avro-confluent": _avro_confluent,  # magic byte 0, schema id, Avro body; schema registry
    "string": _string,
    "bytes": _bytes,
}


def build_codec(
    fmt: str,
    schema_path: Path | None,
    *,
    topic: str | None = None,
    registry: SchemaRegistryClient | None = None,
    auto_register: bool = True,
) -> Codec:
    """The codec of one topic; schema paths are resolved by the caller.

    ``fmt`` is a format name or a ``Format`` member. ``avro-confluent`` also needs the topic (it
    names the registry subject) and a registry client.
    """
    name = fmt.value if isinstance(fmt, Enum) else fmt
    factory = CODECS.get(name)
    if factory is None:
        raise ValueError(f"unknown format {name!r}; formats: {choices(CODECS)}")
    return factory(schema_path, topic, registry, auto_register)
