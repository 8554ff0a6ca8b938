"""Changelog records: one per changed key, in the changelog partition of its input partition.

Key: the state key as UTF-8. Value: the row's JSON, or none for a removed key (a tombstone,
which a compacted topic eventually drops). Header ``kedro-stream.state.as_of``: the input
offset the row accounts for (see :mod:`kedro_stream.state`).
"""

from __future__ import annotations

import orjson
from confluent_kafka import Message

from kedro_stream.records import HEADER_PREFIX, Outgoing
from kedro_stream.serde import DecodeError
from kedro_stream.state.errors import CorruptChangelog
from kedro_stream.state.rows import Change, decode_row
from kedro_stream.state.store import Entry

AS_OF = HEADER_PREFIX + "state.as_of"


def changelog_record(topic: str, partition: int, change: Change, as_of: int) -> Outgoing:
    """The changelog record of one key's change, in the changelog partition of its input
    partition, tagged with the input offset it accounts for."""
    return Outgoing(
        topic,
        change.value,
        change.key.encode(),
        [(AS_OF, str(as_of).encode())],
        partition,
    )


def parse(message: Message) -> Entry:
    """(key, as_of, row) of a changelog record; :class:`CorruptChangelog` for anything else.

    One try block on the way every good record takes (a restore reads millions);
    :func:`_diagnose` says what is wrong with a bad one."""
    value = message.value()
    try:
        key = message.key().decode()  # type: ignore[union-attr]
        headers = message.headers()
        # Ours carry one header; a record that passed through other tools may carry more.
        first, position = headers[0]  # type: ignore[index]
        as_of = int(position if first == AS_OF else next(v for k, v in headers if k == AS_OF))  # type: ignore[union-attr]
        if value is not None and type(orjson.loads(value)) is not dict:
            raise ValueError("not an object")
    except (AttributeError, TypeError, IndexError, StopIteration, ValueError, UnicodeDecodeError):
        raise CorruptChangelog(_diagnose(message)) from None
    return key, as_of, value


def _diagnose(message: Message) -> str:
    where = f"changelog {message.topic()}[{message.partition()}] offset {message.offset()}"
    key = message.key()
    if key is None:
        return f"{where}: no key"
    try:
        text = key.decode()
    except UnicodeDecodeError:
        return f"{where}: a key that is not UTF-8"
    as_of = next((v for k, v in message.headers() or [] if k == AS_OF), None)
    if as_of is None or not as_of.strip().lstrip(b"-").isdigit():
        return f"{where}, key {text!r}: no integer {AS_OF} header"
    try:
        decode_row(message.value() or b"")
    except DecodeError as exc:
        return f"{where}, key {text!r}: not a state row ({exc})"
    return f"{where}, key {text!r}: not a state row"
