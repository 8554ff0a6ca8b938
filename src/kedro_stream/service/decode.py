"""Stage 1 of a batch: message values → records, and dead letters for the values that are not.

A bad record never fails its batch: it is set aside for the dead-letter topic (stage
``decode``) and committed with the rest.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from confluent_kafka import Message

from kedro_stream.records import Decoded, Outgoing
from kedro_stream.serde import METADATA_COLUMNS, Codec, DecodeError
from kedro_stream.service.batch import Batch
from kedro_stream.service.dead_letters import DeadLetters, Stage


@dataclass(frozen=True)
class DecodedBatch:
    """A batch's records, split into those that decoded and the dead letters of those that
    did not."""

    good: list[Decoded]  # each record beside the message it came from
    dead: list[Outgoing]  # dead-letter copies of the messages that did not decode


class KeyMismatch(DecodeError):
    """A stateful stream's record whose state key is not its message key: its state lives in the
    partition of its message key, so it would read and write another partition's rows."""


class Decoder:
    """Step 1 of a batch: the input's codec over every message, bad values set aside."""

    def __init__(
        self,
        codec: Codec,
        dead_letters: DeadLetters,
        *,
        with_metadata: bool,
        key_field: str | None = None,
    ) -> None:
        self.fields = codec.fields
        self._decode = codec.decode
        self._dead_letters = dead_letters
        self._with_metadata = with_metadata  # add the _key, _topic, ... columns to each record
        self._key_field = key_field  # a stateful stream's state key: must be the message key

    def decode(self, batch: Batch) -> DecodedBatch:
        """Every record of ``batch``. Raises only what is not the record's fault (a schema
        registry that does not answer): the batch then fails and is retried."""
        good: list[Decoded] = []
        dead: list[Outgoing] = []
        decode, with_metadata = self._decode, self._with_metadata
        for message in batch.messages:
            try:
                record = decode(message.value())
                if self._key_field is not None:
                    _check_key(record, self._key_field, message.key())
            except DecodeError as error:
                dead.append(self._dead_letters.of(message, error, Stage.DECODE))
                continue
            if with_metadata:
                record.update(zip(METADATA_COLUMNS, _metadata(message), strict=True))
            good.append((message, record))
        return DecodedBatch(good, dead)


def _metadata(message: Message) -> tuple[Any, ...]:
    key = message.key()
    return (
        key.decode("utf-8", "replace") if key is not None else None,
        message.topic(),
        message.partition(),
        message.offset(),
        message.timestamp()[1],
    )


def _check_key(record: dict[str, Any], field: str, key: bytes | None) -> None:
    value = record.get(field)
    if value is None or key is None or str(value).encode() != key:
        shown = key.decode("utf-8", "replace") if key is not None else None
        raise KeyMismatch(
            f"state key {field!r} is {value!r} but the message key is {shown!r}: state is kept "
            f"per partition, so produce each record with its {field} as the message key"
        )
