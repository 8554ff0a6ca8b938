"""Changelog records: one per changed key, in the changelog partition of its input partition.

Key: the state key as UTF-8. Value: the row's JSON, or none for a removed key (a tombstone,
which a compacted topic eventually drops). Header ``kedro-stream.state.as_of``: the input
offset the row accounts for (see :mod:`kedro_stream.state`).
"""

from __future__ import annotations

from confluent_kafka import Message

from kedro_stream.serde import DecodeError
from kedro_stream.service.messages import Outgoing
from kedro_stream.state.errors import CorruptChangelog
from kedro_stream.state.rows import Change, decode_row
from kedro_stream.state.store import Entry

AS_OF = "kedro-stream.state.as_of"


def changelog_record(topic: str, partition: int, change: Change, as_of: int) -> Outgoing:
    return Outgoing(
        topic,
        change.value,
        change.key.encode(),
        [(AS_OF, str(as_of).encode())],
        partition,
    )


def parse(message: Message) -> Entry:
    """(key, as_of, row) of a changelog record; :class:`CorruptChangelog` for anything else."""
    where = f"changelog {message.topic()}[{message.partition()}] offset {message.offset()}"
    key = message.key()
    if key is None:
        raise CorruptChangelog(f"{where}: no key")
    try:
        text = key.decode()
    except UnicodeDecodeError:
        raise CorruptChangelog(f"{where}: a key that is not UTF-8") from None
    as_of = next((v for k, v in message.headers() or [] if k == AS_OF), None)
    try:
        position = int(as_of) if as_of is not None else None
    except ValueError:
        position = None
    if position is None:
        raise CorruptChangelog(f"{where}, key {text!r}: no integer {AS_OF} header")
    value = message.value()
    if value is not None:
        try:
            decode_row(value)
        except DecodeError as exc:
            raise CorruptChangelog(f"{where}, key {text!r}: not a state row ({exc})") from None
    return text, position, value
