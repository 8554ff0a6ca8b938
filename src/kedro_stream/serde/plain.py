"""Values without a schema: the whole value, as text or as bytes, in one ``value`` field."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kedro_stream.errors import headline
from kedro_stream.serde.base import DecodeError, EncodeError


class StringCodec:
    """The whole value as text in a ``value`` field."""

    fields = ("value",)

    def decode(self, value: bytes | None) -> dict[str, Any]:
        """The value as text, under the field ``value``."""
        if value is None:
            raise DecodeError("empty message (null value)")
        try:
            return {"value": value.decode("utf-8")}
        except UnicodeDecodeError as exc:
            raise DecodeError(f"not UTF-8: {headline(exc)}") from None

    def encode(self, record: Mapping[str, Any]) -> bytes:
        """The record's ``value`` field as UTF-8."""
        return str(_value(record, "string")).encode()


class BytesCodec:
    """The whole value, untouched, in a ``value`` field."""

    fields = ("value",)

    def decode(self, value: bytes | None) -> dict[str, Any]:
        """The value as it is, under the field ``value``."""
        return {"value": value}

    def encode(self, record: Mapping[str, Any]) -> bytes:
        """The record's ``value`` field, as it is."""
        value = _value(record, "bytes")
        if not isinstance(value, bytes | bytearray):
            raise EncodeError(f"bytes format needs bytes in 'value', got {type(value).__name__}")
        return bytes(value)


def _value(record: Mapping[str, Any], fmt: str) -> Any:
    try:
        return record["value"]
    except KeyError:
        raise EncodeError(
            f"{fmt} format writes the record's 'value' field, which it lacks; fields: "
            f"{sorted(record)}"
        ) from None
