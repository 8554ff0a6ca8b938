"""Test-side Kafka clients: read a topic from the start, check committed offsets, produce."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, Message, Producer, TopicPartition


def produce(
    bootstrap: str, topic: str, values: Iterable[bytes | None], key: bytes | None = None
) -> int:
    """Write ``values`` and check the broker kept them all.

    Unkeyed records are spread over the partitions one by one: the default sticky partitioner
    puts everything queued before the topic's metadata arrives into one partition, which can
    overflow a small broker's retention (the embedded broker keeps about 5 MiB a partition).
    """
    return produce_keyed(bootstrap, topic, ((key, value) for value in values))


def produce_keyed(
    bootstrap: str, topic: str, records: Iterable[tuple[bytes | None, bytes | None]]
) -> int:
    producer = Producer(
        {"bootstrap.servers": bootstrap, "linger.ms": 5, "sticky.partitioning.linger.ms": 0}
    )
    first_offsets: dict[int, int] = {}

    def delivered(err: Any, msg: Message) -> None:
        if err is None:
            first = first_offsets.get(msg.partition(), msg.offset())
            first_offsets[msg.partition()] = min(first, msg.offset())

    sent = 0
    for key, value in records:
        producer.produce(topic, value=value, key=key, on_delivery=delivered)
        producer.poll(0)
        sent += 1
    assert producer.flush(30) == 0
    assert_retained(bootstrap, topic, first_offsets)
    return sent


def assert_retained(bootstrap: str, topic: str, first_offsets: dict[int, int]) -> None:
    """Fail as a set-up error, not a product one, when the broker no longer holds records from
    ``first_offsets`` (partition → offset) on."""
    consumer = _reader(bootstrap)
    try:
        for partition, first in first_offsets.items():
            low, _ = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
            assert low <= first, (
                f"the broker dropped records of {topic}[{partition}] (offsets {first}..{low - 1}): "
                "the test wrote more than its retention"
            )
    finally:
        consumer.close()


def produce_json(bootstrap: str, topic: str, records: Iterable[dict[str, Any]]) -> int:
    return produce(bootstrap, topic, (json.dumps(r).encode() for r in records))


def produce_payments(bootstrap: str, topic: str, payments: Iterable[dict[str, Any]]) -> int:
    """The example's payments keyed by account, as its stateful stream requires: an account's
    payments then share a partition, in the order given."""
    records = ((str(p["account_id"]).encode(), json.dumps(p).encode()) for p in payments)
    return produce_keyed(bootstrap, topic, records)


def _reader(bootstrap: str, isolation: str = "read_uncommitted") -> Consumer:
    return Consumer(
        {
            "isolation.level": isolation,
            "bootstrap.servers": bootstrap,
            "group.id": f"test-reader-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "fetch.wait.max.ms": 20,
        }
    )


def partitions(bootstrap: str, topic: str, timeout_s: float = 10) -> list[int]:
    consumer = _reader(bootstrap)
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            meta = consumer.list_topics(topic, timeout=5).topics.get(topic)
            if meta is not None and meta.error is None and meta.partitions:
                return sorted(meta.partitions)
            time.sleep(0.1)
        raise AssertionError(f"topic {topic} has no partitions after {timeout_s} s")
    finally:
        consumer.close()


def read_topic(
    bootstrap: str,
    topic: str,
    *,
    expect: int | None = None,
    timeout_s: float = 20,
    isolation: str = "read_uncommitted",
) -> list[Message]:
    """Every message of ``topic`` from the beginning; waits for ``expect`` messages, or, when
    ``expect`` is None, until every partition is read to the end offset it had when reading
    began and the topic then stays quiet for 2 s (a broker whose watermarks are wrong, such as
    Tansu's, still gets the quiet period)."""
    consumer = _reader(bootstrap, isolation)
    tps = [TopicPartition(topic, p) for p in partitions(bootstrap, topic)]
    ends = {tp.partition: consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in tps}
    assigned = [TopicPartition(topic, tp.partition, OFFSET_BEGINNING) for tp in tps]
    consumer.assign(assigned)
    reached: dict[int, int] = {}
    messages: list[Message] = []
    deadline = time.monotonic() + timeout_s
    quiet_since = time.monotonic()
    try:
        while time.monotonic() < deadline:
            batch = consumer.consume(1000, 0.2)
            got = [m for m in batch if m.error() is None]
            messages += got
            # The position, not the last message: under transactions the last offset of a
            # partition is a commit marker that no read returns.
            for tp in consumer.position(assigned):
                if tp.offset >= 0:
                    reached[tp.partition] = tp.offset
            if got:
                quiet_since = time.monotonic()
            if expect is not None and len(messages) >= expect:
                break
            at_end = all(reached.get(p, 0) >= end for p, end in ends.items())
            quiet_for = time.monotonic() - quiet_since
            if expect is None and at_end and quiet_for > 2.0:
                break
    finally:
        consumer.close()
    return messages


def committed(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    """Committed offset per partition of ``group`` (partitions without a commit left out)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        tps = [TopicPartition(topic, p) for p in partitions(bootstrap, topic)]
        return {
            tp.partition: tp.offset for tp in consumer.committed(tps, timeout=10) if tp.offset >= 0
        }
    finally:
        consumer.close()


def wait_until(
    condition: Callable[[], bool], timeout_s: float, what: str, every_s: float = 0.1
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(every_s)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def headers(message: Message) -> dict[str, bytes]:
    return dict(message.headers() or [])


def message_count(bootstrap: str, topic: str) -> int:
    """Records in ``topic`` by its watermarks; 0 when the topic does not exist."""
    consumer = _reader(bootstrap)
    try:
        meta = consumer.list_topics(topic, timeout=10).topics.get(topic)
        if meta is None or meta.error is not None:
            return 0
        total = 0
        for partition in meta.partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
            total += high - low
        return total
    finally:
        consumer.close()
