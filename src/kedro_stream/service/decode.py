"""Stage 1 of a batch: message values → records, and dead letters for the values that are not.

A bad record never fails its batch: it is set aside for the dead-letter topic (stage
``decode``) and committed with the rest.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from confluent_kafka import Message

from kedro_stream.serde import METADATA_COLUMNS, Codec, DecodeError
from kedro_stream.service.batch import Batch
from kedro_stream.service.messages import DeadLetters, Outgoing, Stage

Decoded = tuple[Message, dict[str, Any]]


@dataclass(frozen=True)
class DecodedBatch:
    good: list[Decoded]  # each record beside the message it came from
    dead: list[Outgoing]  # dead-letter copies of the messages that did not decode


class Decoder:
    def __init__(self, codec: Codec, dead_letters: DeadLetters, *, with_metadata: bool) -> None:
        self.fields = codec.fields
        self._decode = codec.decode
        self._dead_letters = dead_letters
        self._with_metadata = with_metadata  # add the _key, _topic, ... columns to each record

    def decode(self, batch: Batch) -> DecodedBatch:
        """Every record of ``batch``. Raises only what is not the record's fault (a schema
        registry that does not answer): the batch then fails and is retried."""
        good: list[Decoded] = []
        dead: list[Outgoing] = []
        decode, with_metadata = self._decode, self._with_metadata
        for message in batch.messages:
            try:
                record = decode(message.value())
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
