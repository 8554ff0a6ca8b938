"""The record types the rooms above share: a decoded input record, and a message to publish.

They sit at the floor of the package, beside :mod:`kedro_stream.errors`, because the service
and the state both speak them: the service decodes records and publishes outputs and dead
letters, the state reads the keys of decoded records and publishes changelog records. Kept
here, neither room needs the other's modules.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from confluent_kafka import Message

#: Kafka message headers, in order: a header may repeat.
Headers = list[tuple[str, bytes]]
#: Every header kedro-stream writes starts with this.
HEADER_PREFIX = "kedro-stream."

#: A good input record beside the message it came from (its partition, offset and headers).
Decoded = tuple[Message, dict[str, Any]]


class Outgoing(NamedTuple):
    """A message to publish: an output record, a dead letter or a changelog record.

    A tuple: one is built per output record, and a frozen dataclass costs three times as much
    to build."""

    topic: str
    value: bytes | None
    key: bytes | None = None
    headers: Headers | None = None
    partition: int | None = None  # None: the producer's partitioner picks one from the key
