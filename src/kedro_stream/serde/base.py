"""What every codec is: the :class:`Codec` protocol and the errors its methods may raise.

A codec turns one Kafka message value into one record (a dict) and back. :class:`DecodeError`
and :class:`EncodeError` are the record's fault (the same record always fails, so it is
dead-lettered, not retried); :class:`RegistryUnavailable` is not, so its batch is retried.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from kedro_stream.errors import KedroStreamError


class DecodeError(KedroStreamError):
    """A message value is not a valid record; the message says why in one line."""


class EncodeError(KedroStreamError):
    """An output record cannot be written in its topic's format: the same record always fails,
    so retrying is pointless."""


class RegistryUnavailable(KedroStreamError):
    """The schema registry did not answer: not the record's fault, so the batch fails and is
    retried (then handled per ``on_failure``) instead of every record being dead-lettered."""


class Codec(Protocol):
    """One topic's value format. Both methods run once per record on the hot path."""

    fields: tuple[str, ...] | None  # the record's fields in schema order, when known

    def decode(self, value: bytes | None) -> dict[str, Any]:
        """The record a message value holds. A bad value (``None`` included) raises
        :class:`DecodeError` with a one-line reason, and never any other exception for it:
        anything else stops the loop instead of dead-lettering the one record. (A codec that
        needs a schema registry raises :class:`RegistryUnavailable` when it does not answer.)"""
        ...

    def encode(self, record: Mapping[str, Any]) -> bytes:
        """The message value of a record. Raises :class:`EncodeError` when the record cannot
        be written in the format (wrong types, missing fields, no schema to write with); an
        unanswering schema registry is :class:`RegistryUnavailable` instead."""
        ...


def record_fields(schema: Mapping[str, Any] | None) -> tuple[str, ...] | None:
    """The field names of a parsed Avro record schema, in order; ``None`` for anything else."""
    if schema is None or schema.get("type") != "record":
        return None
    return tuple(f["name"] for f in schema["fields"])
