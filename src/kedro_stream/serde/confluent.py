"""The Confluent wire format: magic byte 0, a 4-byte schema id, then the Avro body.

Framing, schema lookup, registration and schema resolution are left to the client library
(``confluent_kafka.schema_registry``); this module only gives it the :class:`Codec` interface and
turns its many failure types into one-line :class:`DecodeError` / :class:`EncodeError` reasons,
or :class:`RegistryUnavailable` when the registry does not answer.

Importing this module imports the registry client (about 0.2 s): only
:func:`kedro_stream.serde.build_codec` for ``avro-confluent`` and the service's registry set-up
do, lazily.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext

from kedro_stream.errors import headline
from kedro_stream.serde.avro import load_schema
from kedro_stream.serde.base import DecodeError, EncodeError, RegistryUnavailable, record_fields


def registry_client(properties: Mapping[str, Any]) -> SchemaRegistryClient:
    """A client with these ``SchemaRegistryClient`` properties; a ``mock://`` URL gives the
    library's in-memory registry. Properties the client refuses raise :class:`ValueError` with a
    one-line reason (the library's messages name keys, never values)."""
    try:
        return SchemaRegistryClient.new_client(dict(properties))
    except (TypeError, ValueError) as exc:
        raise ValueError(headline(exc)) from None


class ConfluentAvroCodec:
    """Avro in the Confluent wire format for one topic.

    Decoding reads with the writer schema the registry holds for the message's schema id,
    resolved to the local schema when one is given (schema evolution); encoding writes with the
    local schema, registered (or looked up) under the ``<topic>-value`` subject.
    """

    def __init__(
        self,
        registry: SchemaRegistryClient,
        topic: str,
        schema_path: Path | None,
        *,
        auto_register: bool = True,
    ) -> None:
        schema_str = schema_path.read_text() if schema_path is not None else None
        self.fields = record_fields(load_schema(schema_path)) if schema_path is not None else None
        self._subject = f"{topic}-value"
        self._context = SerializationContext(topic, MessageField.VALUE)
        self._deserializer = AvroDeserializer(registry, schema_str)
        self._serializer = (
            AvroSerializer(registry, schema_str, conf={"auto.register.schemas": auto_register})
            if schema_str is not None
            else None
        )

    def decode(self, value: bytes | None) -> dict[str, Any]:
        """One record, read with its writer schema from the registry (fetched once per id);
        :class:`RegistryUnavailable` when the registry does not answer (not the record's fault)."""
        if value is None:
            raise DecodeError("empty message (null value)")
        try:
            record = self._deserializer(value, self._context)
        except Exception as exc:  # framing, registry (HTTP or network) and fastavro errors
            if _registry_down(exc):
                raise RegistryUnavailable(
                    f"schema registry unavailable reading{_schema_id(value)}: {headline(exc)}"
                ) from exc
            raise DecodeError(
                f"cannot read Confluent Avro{_schema_id(value)}: {headline(exc)}"
            ) from None
        if not isinstance(record, dict):
            raise DecodeError(f"expected an Avro record, got {type(record).__name__}")
        return record

    def encode(self, record: Mapping[str, Any]) -> bytes:
        """Magic byte, schema id, Avro body; the schema registered once if ``auto_register``."""
        if self._serializer is None:
            raise EncodeError("format avro-confluent needs a schema to write with")
        try:
            return self._serializer(dict(record), self._context)
        except Exception as exc:  # registry (HTTP or network) and fastavro errors
            if _registry_down(exc):  # the record may be fine: retried, not dead-lettered
                raise RegistryUnavailable(
                    f"schema registry unavailable writing (subject {self._subject}): "
                    f"{headline(exc)}"
                ) from exc
            raise EncodeError(f"cannot write Confluent Avro: {headline(exc)}") from exc


def _registry_down(exc: Exception) -> bool:
    if isinstance(exc, SchemaRegistryError):
        status = exc.http_status_code
        return status >= 500 or status in (408, 429) or status < 0
    # The client's transport errors (connection refused, timeouts) are httpx errors.
    return isinstance(exc, OSError | TimeoutError) or type(exc).__module__.startswith("httpx")


def _schema_id(value: bytes) -> str:
    """The schema id a well-framed value names: the first thing to check on the registry."""
    if len(value) >= 5 and value[0] == 0:
        return f" (schema id {int.from_bytes(value[1:5], 'big')})"
    return ""
