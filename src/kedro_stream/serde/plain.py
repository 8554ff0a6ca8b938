"""Values without a schema: the whole value, as text or as bytes, in one ``value`` field."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kedro_stream.errors import one_line
from kedro_stream.serde.base import DecodeError, EncodeError


class StringCodec:
    """The whole value as text in a ``value`` field."""

    fields = ("value",)

    def decode(self, value: bytes | None) -> dict[str, Any]:
        if value is None:
            raise DecodeError("empty message (null value)")
        try:
            return {"value": value.decode("utf-8")}
        except UnicodeDecodeError as exc:
            raise DecodeError(f"not UTF-8: {one_line(exc)}") from None

    def encode(self, record: Mapping[str, Any]) -> bytes:
        return str(record["value"]).encode()


class BytesCodec:
    """The whole value, untouched, in a ``value`` field."""

    fields = ("value",)

    def decode(self, value: bytes | None) -> dict[str, Any]:
        return {"value": value}

    def encode(self, record: Mapping[str, Any]) -> bytes:
        value = record["value"]
        if not isinstance(value, bytes | bytearray):
            raise EncodeError(f"bytes format needs bytes in 'value', got {type(value).__name__}")
        return bytes(value)
