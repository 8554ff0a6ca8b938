"""The producer's one delivery callback: a failed output must reach the commit protocol; and
what at-least-once does with the offsets a rebalance refused."""

from __future__ import annotations

from confluent_kafka import KafkaError, KafkaException, TopicPartition

from kedro_stream.config import KafkaConfig, parse_stream_file
from kedro_stream.kafka.clients import make_producer
from kedro_stream.service.commit import AtLeastOnce, DeliveryFailures
from tests.fake_clients import FakeConsumer, FakeProducer

STREAM = {
    "namespace": "scoring",
    "group_id": "g",
    "input": {"topics": ["payments"], "dataset": "payments"},
}


def test_the_producer_reports_a_failed_output_to_its_delivery_failures() -> None:
    """No broker listens on port 1, so the record times out: a real librdkafka failure,
    reported through the callback given when the producer was built, not with the record."""
    stream = parse_stream_file({"streams": {"s": STREAM}}, {}).streams["s"]
    kafka = KafkaConfig(
        bootstrap_servers="127.0.0.1:1", producer={"message.timeout.ms": 200, "log_level": 0}
    )
    failures = DeliveryFailures()
    producer = make_producer(kafka, stream, on_delivery=failures)
    producer.produce("scores", b"{}", b"key")
    assert producer.flush(10) == 0
    assert len(failures.failed) == 1
    failures.clear()
    assert failures.failed == []


def _deferring() -> tuple[AtLeastOnce, FakeConsumer]:
    """At-least-once whose first commit, of partitions 0 and 1, a rebalance refused."""
    refused = KafkaException(KafkaError(KafkaError.ILLEGAL_GENERATION))
    consumer = FakeConsumer([], commit_errors=[refused])
    protocol = AtLeastOnce(
        consumer,  # type: ignore[arg-type]
        FakeProducer(),  # type: ignore[arg-type]
        DeliveryFailures(),
        flush_timeout_s=1,
    )
    protocol.commit([TopicPartition("in", 0, 5), TopicPartition("in", 1, 7)])
    assert consumer.commits == []
    return protocol, consumer


def test_lost_partitions_drop_their_deferred_offsets() -> None:
    """A fenced member's partitions may already be processed by another: committing its old
    offsets there could move them back."""
    protocol, consumer = _deferring()
    protocol.on_lost([TopicPartition("in", 1)])
    protocol.commit_deferred()
    assert consumer.commits == [[("in", 0, 5)]]


def test_a_later_batch_carries_the_deferred_offsets() -> None:
    protocol, consumer = _deferring()
    protocol.commit([TopicPartition("in", 0, 9)])
    assert consumer.commits == [[("in", 0, 9), ("in", 1, 7)]]
    protocol.commit_deferred()  # nothing left
    assert len(consumer.commits) == 1
