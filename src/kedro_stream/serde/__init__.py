"""Bytes ↔ records ↔ the dataset a namespace consumes; no Kafka client, no Kedro here (only
``avro-confluent`` talks to the outside: to its schema registry)."""

from kedro_stream.serde.codecs import (
    Codec,
    DecodeError,
    EncodeError,
    build_codec,
    schema_registry_for,
)
from kedro_stream.serde.frames import METADATA_COLUMNS, records_of, to_dataset

__all__ = [
    "METADATA_COLUMNS",
    "Codec",
    "DecodeError",
    "EncodeError",
    "build_codec",
    "records_of",
    "schema_registry_for",
    "to_dataset",
]
