"""Bytes ↔ records ↔ the dataset a namespace consumes; no Kafka client, no Kedro, no
configuration here (only ``avro-confluent`` talks to the outside: to its schema registry).

One module per format (``json``, ``avro``, ``confluent``, ``plain``), the :class:`Codec`
protocol and its errors in ``base``, the format table in ``formats``. Turning ``stream.yml``
into codecs is the service's job (``kedro_stream.service.codecs``).
"""

from kedro_stream.serde.base import Codec, DecodeError, EncodeError, RegistryUnavailable
from kedro_stream.serde.formats import build_codec
from kedro_stream.serde.frames import METADATA_COLUMNS, records_of, to_dataset

__all__ = [
    "METADATA_COLUMNS",
    "Codec",
    "DecodeError",
    "EncodeError",
    "RegistryUnavailable",
    "build_codec",
    "records_of",
    "to_dataset",
]
