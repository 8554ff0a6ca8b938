"""Micro-batches: bounded by size and by wait; per-partition order kept; offsets to commit."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

logger = logging.getLogger(__name__)
_POLL_SLICE_S = 0.1  # longest single wait, so a stop request is seen quickly


@dataclass(frozen=True)
class Batch:
    """The records of one micro-batch, in the order the consumer handed them out."""

    messages: list[Message]

    def __len__(self) -> int:
        return len(self.messages)

    def next_offsets(self) -> list[TopicPartition]:
        """Per partition, the offset after the batch's last record: what a commit stores."""
        offsets: dict[tuple[str, int], int] = {}
        for m in self.messages:
            key = (m.topic(), m.partition())
            offsets[key] = max(offsets.get(key, -1), m.offset() + 1)
        return [
            TopicPartition(topic, partition, offset)
            for (topic, partition), offset in offsets.items()
        ]

    def first_offsets(self) -> list[TopicPartition]:
        """Per partition, the batch's first offset: where to seek to read it again."""
        first: dict[tuple[str, int], int] = {}
        for m in self.messages:
            first.setdefault((m.topic(), m.partition()), m.offset())
        return [TopicPartition(t, p, o) for (t, p), o in first.items()]


def collect(consumer: Consumer, *, max_size: int, max_wait_s: float) -> Batch:
    """Up to ``max_size`` records. Records already fetched (they arrived while the last batch
    was processed) make a batch at once; only a consumer with none at hand waits, at most
    ``max_wait_s``, for a batch to fill. Under load batches are full either way; at a low rate
    records then wait for one batch's processing, not for that plus ``max_wait_s``."""
    messages = _take(consumer.consume(max_size, 0))
    if messages:
        return Batch(messages)
    deadline = time.monotonic() + max_wait_s
    while len(messages) < max_size:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        wait = min(remaining, _POLL_SLICE_S)
        messages += _take(consumer.consume(max_size - len(messages), wait))
    return Batch(messages)


def _take(polled: list[Message]) -> list[Message]:
    """The records among ``polled``; client errors are logged (librdkafka retries them)."""
    messages = []
    for message in polled:
        error = message.error()
        if error is None:
            messages.append(message)
        elif error.fatal():
            raise KafkaException(error)
        elif error.code() != KafkaError._PARTITION_EOF:
            logger.warning("Consumer error (retried by the client): %s", error)
    return messages
