"""Bytes ↔ records ↔ the dataset a namespace consumes; no Kafka, no Kedro here."""

from kedro_stream.serde.codecs import Codec, DecodeError, EncodeError, build_codec
from kedro_stream.serde.frames import METADATA_COLUMNS, records_of, to_dataset

__all__ = [
    "METADATA_COLUMNS",
    "Codec",
    "DecodeError",
    "EncodeError",
    "build_codec",
    "records_of",
    "to_dataset",
]
