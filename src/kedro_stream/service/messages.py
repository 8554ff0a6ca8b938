"""Outgoing messages, and dead-letter copies of incoming ones.

A dead-letter record keeps the original key, value and headers byte for byte and adds
``kedro-stream.*`` headers that say why and where it came from, so it can be replayed.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import NamedTuple

from confluent_kafka import Message

from kedro_stream.errors import first_line

Headers = list[tuple[str, bytes]]
HEADER_PREFIX = "kedro-stream."
_MAX_REASON_CHARS = 1000


class Stage(str, Enum):
    """Where a record failed: its ``error.stage`` header and the dead-letter metric's label."""

    DECODE = "decode"  # its value is not a record of the input's format
    PIPELINE = "pipeline"  # the namespace run failed on its batch
    ENCODE = "encode"  # an output of its batch cannot be written in its topic's format
    STATE = "state"  # its batch's state updates do not replace its keys' rows


class Outgoing(NamedTuple):
    """A tuple: one is built per output record, and a frozen dataclass costs three times as
    much to build."""

    topic: str
    value: bytes | None
    key: bytes | None = None
    headers: Headers | None = None
    partition: int | None = None  # None: the producer's partitioner picks one from the key


@dataclass(frozen=True)
class DeadLetters:
    """Where a stream's failed records go, and the namespace they failed in."""

    topic: str
    namespace: str | None

    def of(self, message: Message, error: BaseException, stage: Stage) -> Outgoing:
        """A copy of ``message`` for the dead-letter topic, with the reason in headers."""
        _, timestamp = message.timestamp()
        added = {
            "error.class": type(error).__name__,
            "error.message": first_line(error)[:_MAX_REASON_CHARS],
            "error.stage": stage.value,
            "source.topic": message.topic() or "",
            "source.partition": str(message.partition()),
            "source.offset": str(message.offset()),
            "source.timestamp": str(timestamp),
            "namespace": self.namespace or "",
        }
        headers = list(message.headers() or [])
        headers += [(HEADER_PREFIX + k, v.encode()) for k, v in added.items()]
        return Outgoing(topic=self.topic, value=message.value(), key=message.key(), headers=headers)
