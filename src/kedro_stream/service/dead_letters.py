"""Dead letters: copies of incoming messages that could not be processed, and where each failed.

A dead-letter record keeps the original key, value and headers byte for byte and adds
``kedro-stream.*`` headers that say why and where it came from, so it can be replayed.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from confluent_kafka import Message

from kedro_stream.errors import first_line
from kedro_stream.records import HEADER_PREFIX, Outgoing
from kedro_stream.serde import EncodeError
from kedro_stream.state.errors import StateUpdateError

_MAX_REASON_CHARS = 1000


class Stage(str, Enum):
    """Where a record failed: its ``error.stage`` header and the dead-letter metric's label."""

    DECODE = "decode"  # its value is not a record of the input's format
    PIPELINE = "pipeline"  # the namespace run failed on its batch
    ENCODE = "encode"  # an output of its batch cannot be written in its topic's format
    STATE = "state"  # its batch's state updates do not replace its keys' rows


def stage_of(error: BaseException) -> Stage:
    """The stage a batch (or a record alone) failed at, for its dead letters."""
    if isinstance(error, EncodeError):
        return Stage.ENCODE
    if isinstance(error, StateUpdateError):
        return Stage.STATE
    return Stage.PIPELINE


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
