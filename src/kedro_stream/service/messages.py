"""Outgoing messages, and dead-letter copies of incoming ones.

A dead-letter record keeps the original key, value and headers byte for byte and adds
``kedro-stream.*`` headers that say why and where it came from, so it can be replayed.
"""

from __future__ import annotations

from typing import NamedTuple

from confluent_kafka import Message

Headers = list[tuple[str, bytes]]
HEADER_PREFIX = "kedro-stream."


class Outgoing(NamedTuple):
    """A tuple: one is built per output record, and a frozen dataclass costs three times as
    much to build."""

    topic: str
    value: bytes | None
    key: bytes | None = None
    headers: Headers | None = None


def dead_letter(
    message: Message, topic: str, *, error: BaseException, stage: str, namespace: str | None
) -> Outgoing:
    """A copy of ``message`` for the dead-letter topic, with the reason in headers."""
    _, timestamp = message.timestamp()
    reason = str(error).strip().splitlines()
    added = {
        "error.class": type(error).__name__,
        "error.message": (reason[0] if reason else "")[:1000],
        "error.stage": stage,
        "source.topic": message.topic() or "",
        "source.partition": str(message.partition()),
        "source.offset": str(message.offset()),
        "source.timestamp": str(timestamp),
        "namespace": namespace or "",
    }
    headers = list(message.headers() or [])
    headers += [(HEADER_PREFIX + k, v.encode()) for k, v in added.items()]
    return Outgoing(topic=topic, value=message.value(), key=message.key(), headers=headers)
