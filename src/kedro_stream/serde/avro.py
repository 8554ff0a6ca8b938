"""Schemaless Avro bodies (no header) against a local ``.avsc``, and loading those schemas."""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import fastavro

from kedro_stream.errors import headline
from kedro_stream.serde.base import DecodeError, EncodeError, record_fields


@lru_cache(maxsize=64)
def load_schema(path: Path) -> dict[str, Any]:
    """Parse an ``.avsc`` once per process."""
    try:
        return fastavro.parse_schema(json.loads(path.read_text()))
    except (OSError, ValueError, fastavro.schema.SchemaParseException) as exc:
        raise ValueError(f"cannot load Avro schema {path}: {exc}") from exc


class AvroCodec:
    """Schemaless Avro bodies (no header) against a local schema."""

    def __init__(self, schema: dict[str, Any]) -> None:
        self.schema = schema
        self.fields = record_fields(schema)

    def decode(self, value: bytes | None) -> dict[str, Any]:
        """One record; :class:`DecodeError` for anything that is not exactly one such record."""
        if value is None:
            raise DecodeError("empty message (null value)")
        buffer = io.BytesIO(value)
        try:
            record = fastavro.schemaless_reader(buffer, self.schema, None)
        except Exception as exc:  # fastavro raises many types on corrupt input
            raise DecodeError(f"not {self.schema.get('name')} Avro: {headline(exc)}") from None
        if buffer.tell() != len(value):
            raise DecodeError(
                f"not {self.schema.get('name')} Avro: {len(value) - buffer.tell()} trailing bytes"
            )
        if not isinstance(record, dict):  # a schema that is not a record (worded as for JSON)
            raise DecodeError(f"expected a JSON object, got {type(record).__name__}")
        return record

    def encode(self, record: Mapping[str, Any]) -> bytes:
        """The record's schemaless Avro body; :class:`EncodeError` if the schema refuses it."""
        buffer = io.BytesIO()
        try:
            fastavro.schemaless_writer(buffer, self.schema, dict(record))
        except Exception as exc:  # fastavro raises ValueError, TypeError, KeyError, ...
            raise EncodeError(f"not {self.schema.get('name')} Avro: {headline(exc)}") from exc
        return buffer.getvalue()
